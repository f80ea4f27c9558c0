"""Realistic messy contact data for the demo, tests and benchmarks (vectorized, seeded).

Messiness on purpose: mixed-case/padded e-mails, phone formats with and without country codes,
country names/codes in many spellings, dates in several formats, a status vocabulary zoo,
exact duplicates, and a small share of invalid rows (no usable identity).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

FIRST = ["James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David",
         "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas",
         "Sarah", "Charles", "Karen", "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver",
         "Sophia", "Elijah", "Mia", "Lucas", "Chloé", "José", "Zoë", "Søren", "Ana", "Wei",
         "Aiko", "Mateo", "Fatima", "Ivan"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
        "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
        "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
        "Harris", "Müller", "O'Brien", "Nguyen", "Kowalski", "Rossi", "Dubois", "Schmidt",
        "Tanaka", "Silva", "Novak", "Jensen", "Kim", "Singh", "Ivanova", "Cohen"]
CITIES = ["London", "New York", "Berlin", "Paris", "Madrid", "Rome", "Toronto", "Sydney",
          "Amsterdam", "Dublin", "Lisbon", "Vienna", "Zurich", "Chicago", "Austin", "Munich"]
# (spellings, national phone digits length, trunk-prefixed)
COUNTRIES = {
    "US": ["US", "USA", "United States", "united states of america", "u.s.a."],
    "GB": ["GB", "UK", "United Kingdom", "England", "gbr"],
    "DE": ["DE", "Germany", "Deutschland", "DEU"],
    "FR": ["FR", "France", "FRA"],
    "ES": ["ES", "Spain", "España"],
    "IT": ["IT", "Italy", "Italia"],
    "CA": ["CA", "Canada"],
    "AU": ["AU", "Australia"],
    "NL": ["NL", "Netherlands", "Holland"],
    "IE": ["IE", "Ireland"],
}
CALLING = {"US": "1", "GB": "44", "DE": "49", "FR": "33", "ES": "34", "IT": "39", "CA": "1",
           "AU": "61", "NL": "31", "IE": "353"}
# Real numbering per country: (leading digits of national numbers: area codes and mobile ranges,
# national number length, trunk prefix dialled before it at home, a length invalid there).
PHONE_PLANS: dict[str, tuple[tuple[str, ...], int, str, int]] = {
    "US": (("212", "415", "312", "617", "202", "305", "512", "713"), 10, "1", 9),
    "CA": (("416", "604", "514", "613"), 10, "1", 9),
    "GB": (("7700", "7911", "7400", "20", "161"), 10, "0", 8),
    "DE": (("151", "160", "170", "176", "30", "89"), 11, "0", 16),
    "FR": (("6", "7", "1"), 9, "0", 8),
    "ES": (("6", "91", "93"), 9, "", 8),
    "IT": (("347", "333", "06", "02"), 10, "", 13),
    "AU": (("4", "2", "3"), 9, "0", 8),
    "NL": (("6", "20"), 9, "0", 8),
    "IE": (("83", "85", "87"), 9, "0", 8),
}
NANP = ("US", "CA")
STATUSES = ["active", "Active", "ACTIVE", "enabled", "1", "inactive", "disabled", "0",
            "pending", "new", "suspended", "blocked", "deleted", "closed", "", "yes"]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "example.org", "mail.de", "corp.co.uk",
           "proton.me", "web.de"]


def people(n: int, seed: int = 7, *, id_offset: int = 0, invalid_rate: float = 0.0005,
           duplicate_rate: float = 0.02, invalid_phone_rate: float = 0.02) -> pl.DataFrame:
    """n messy rows with canonical column names (writers rename them per format).
    int(n * invalid_phone_rate) of the rows get a phone of an invalid length for their country
    (e.g. a US number with nine digits); the rest are valid in national or international
    spelling."""
    rng = np.random.default_rng(seed)
    ids = np.arange(id_offset, id_offset + n)
    first = np.array(FIRST)[rng.integers(0, len(FIRST), n)]
    last = np.array(LAST)[rng.integers(0, len(LAST), n)]
    iso = np.array(list(COUNTRIES))[rng.integers(0, len(COUNTRIES), n)]
    spell_idx = rng.integers(0, 5, n)
    df = pl.DataFrame({
        "id": ids, "first": first, "last": last, "iso": iso, "spell": spell_idx,
        "dom": np.array(DOMAINS)[rng.integers(0, len(DOMAINS), n)],
        "num": rng.integers(200_000_000, 999_999_999, n),
        "fmt": rng.integers(0, 5, n), "days": rng.integers(0, 9000, n),
        "status": np.array(STATUSES)[rng.integers(0, len(STATUSES), n)],
        "city": np.array(CITIES)[rng.integers(0, len(CITIES), n)],
        "house": rng.integers(1, 300, n), "case": rng.integers(0, 4, n),
        "zip": rng.integers(10000, 99999, n),
        "num2": rng.integers(100_000_000, 999_999_999, n), "pick": rng.integers(0, 1 << 30, n),
        "bad_phone": np.isin(np.arange(n), rng.choice(n, int(n * invalid_phone_rate),
                                                       replace=False)),
    })
    spellings = pl.DataFrame(
        [(c, i, names[i % len(names)]) for c, names in COUNTRIES.items() for i in range(5)],
        schema={"iso": pl.String, "spell": pl.Int64, "country_spelling": pl.String},
        orient="row")
    df = df.with_columns(pl.col("spell").cast(pl.Int64)).join(
        spellings, on=["iso", "spell"], how="left", maintain_order="left")
    country_expr = pl.col("country_spelling")
    local = (pl.col("first").str.to_lowercase() + "." + pl.col("last").str.to_lowercase()
             .str.replace_all(r"[^a-z]", "") + pl.col("id").cast(pl.String))
    email = local + "@" + pl.col("dom")
    email = (pl.when(pl.col("case") == 0).then(email.str.to_uppercase())
             .when(pl.col("case") == 1).then(pl.lit("  ") + email + " ")
             .otherwise(email))
    df = df.with_columns(_phone(pl.col("iso"), pl.col("fmt")).alias("phone"))
    date = pl.date(2000, 1, 1) + pl.duration(days=pl.col("days"))
    created = (pl.when(pl.col("fmt") == 0).then(date.dt.strftime("%Y-%m-%d"))
               .when(pl.col("fmt") == 1).then(date.dt.strftime("%d/%m/%Y"))
               .when(pl.col("fmt") == 2).then(date.dt.strftime("%m/%d/%Y"))
               .when(pl.col("fmt") == 3).then(date.dt.strftime("%Y-%m-%d") + "T10:30:00")
               .otherwise(date.dt.strftime("%d %b %Y")))
    out = df.select(
        pl.format("C{}", pl.col("id")).alias("customer_id"),
        email.alias("email"), pl.col("first").alias("first_name"),
        pl.col("last").alias("last_name"), pl.col("phone"),
        (pl.col("house").cast(pl.String) + " " + pl.col("last") + " Street").alias("street"),
        pl.col("city"), country_expr.alias("country"), pl.col("zip").cast(pl.String),
        created.alias("signup_date"), pl.col("status"),
    )
    out = with_invalid_rows(out, invalid_rate, seed)
    # exact duplicates (same person exported twice)
    n_dup = int(n * duplicate_rate)
    if n_dup:
        out = pl.concat([out, out.sample(n_dup, seed=seed, with_replacement=True)])
        out = out.sample(fraction=1.0, shuffle=True, seed=seed)
    return out


def _phone(iso: pl.Expr, fmt: pl.Expr) -> pl.Expr:
    """A phone per PHONE_PLANS from the random columns num/num2/pick/bad_phone, spelled as
    +CC grouped, national with trunk prefix ((NPA) NXX-XXXX in North America), dashed,
    00CC, or bare national digits."""
    def per_country(i: int) -> pl.Expr:
        return iso.replace_strict({c: p[i] for c, p in PHONE_PLANS.items()})
    options = {f"{c}:{j}": prefix for c, p in PHONE_PLANS.items() for j, prefix in enumerate(p[0])}
    choice = iso + ":" + (pl.col("pick") % iso.replace_strict(
        {c: len(p[0]) for c, p in PHONE_PLANS.items()})).cast(pl.String)
    prefix = choice.replace_strict(options)
    length = pl.when(pl.col("bad_phone")).then(per_country(3)).otherwise(per_country(1))
    digits = prefix + pl.col("num").cast(pl.String) + pl.col("num2").cast(pl.String)
    nsn = digits.str.slice(0, length)
    trunk, cc = per_country(2), iso.replace_strict(CALLING)
    grouped = nsn.str.slice(0, 3) + " " + nsn.str.slice(3, 3) + " " + nsn.str.slice(6)
    nanp = iso.is_in(NANP)
    return (pl.when(fmt == 0).then(pl.lit("+") + cc + " " + grouped)
            .when((fmt == 1) & nanp).then(pl.lit("(") + nsn.str.slice(0, 3) + ") "
                                          + nsn.str.slice(3, 3) + "-" + nsn.str.slice(6))
            .when(fmt == 1).then(trunk + grouped)
            .when((fmt == 2) & nanp).then(trunk + "-" + grouped.str.replace_all(" ", "-"))
            .when(fmt == 2).then(trunk + grouped.str.replace_all(" ", "-"))
            .when(fmt == 3).then(pl.lit("00") + cc + " " + grouped)
            .otherwise(nsn))


def with_invalid_rows(df: pl.DataFrame, rate: float, seed: int = 7) -> pl.DataFrame:
    """Turn int(height * rate) rows into unusable ones: bad e-mail, no phone, no id."""
    n_bad = int(df.height * rate)
    if not n_bad:
        return df
    rng = np.random.default_rng(seed)
    mask = pl.Series(np.isin(np.arange(df.height), rng.choice(df.height, n_bad, replace=False)))
    return df.with_columns(
        pl.when(mask).then(pl.lit("not-an-email")).otherwise(pl.col("email")).alias("email"),
        pl.when(mask).then(None).otherwise(pl.col("phone")).alias("phone"),
        pl.when(mask).then(None).otherwise(pl.col("customer_id")).alias("customer_id"))


# Column names per export style: the mapping layer must recognize all of them.
HEADER_STYLES = {
    "crm": {"customer_id": "Customer ID", "email": "E-mail", "first_name": "First Name",
            "last_name": "Last Name", "phone": "Tel", "street": "Address Line 1",
            "city": "Town", "country": "Country", "zip": "ZIP", "signup_date": "Signup Date",
            "status": "Account Status"},
    "app": {"customer_id": "user_id", "email": "email_address", "first_name": "fname",
            "last_name": "lname", "phone": "mobile", "street": "street", "city": "city",
            "country": "country_code", "zip": "postcode", "signup_date": "created_at",
            "status": "status"},
    "legacy": {"customer_id": "ACCOUNT_NO", "email": "MAIL", "first_name": "FORENAME",
               "last_name": "SURNAME", "phone": "TELEPHONE", "street": "ADDR1",
               "city": "CITY", "country": "NATION", "zip": "ZIP_CODE",
               "signup_date": "REGISTERED", "status": "STATE_OF_ACCOUNT"},
}


def styled(df: pl.DataFrame, style: str) -> pl.DataFrame:
    return df.rename(HEADER_STYLES[style])


def write(df: pl.DataFrame, path: Path, fmt: str) -> Path:
    """Write one sample file; csv/tsv/json/jsonl/parquet here, other formats via
    creditlake.samples_formats (XML, SQL dumps, Excel, archives)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        df.write_csv(path)
    elif fmt == "tsv":
        df.write_csv(path, separator="\t")
    elif fmt == "jsonl":
        df.write_ndjson(path)
    elif fmt == "json":
        df.write_json(path)
    elif fmt == "parquet":
        df.write_parquet(path)
    else:
        raise ValueError(f"unknown sample format {fmt}")
    return path
