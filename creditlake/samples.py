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
STATUSES = ["active", "Active", "ACTIVE", "enabled", "1", "inactive", "disabled", "0",
            "pending", "new", "suspended", "blocked", "deleted", "closed", "", "yes"]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "example.org", "mail.de", "corp.co.uk",
           "proton.me", "web.de"]


def people(n: int, seed: int = 7, *, id_offset: int = 0, invalid_rate: float = 0.0005,
           duplicate_rate: float = 0.02) -> pl.DataFrame:
    """n messy rows with canonical column names (writers rename them per format)."""
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
    cc = pl.col("iso").replace_strict(CALLING, return_dtype=pl.String)
    num = pl.col("num").cast(pl.String)
    phone = (pl.when(pl.col("fmt") == 0).then(pl.lit("+") + cc + " " + num)
             .when(pl.col("fmt") == 1).then(pl.lit("0") + num.str.slice(0, 3) + " "
                                             + num.str.slice(3))
             .when(pl.col("fmt") == 2).then(pl.lit("(") + num.str.slice(0, 3) + ") "
                                             + num.str.slice(3, 3) + "-" + num.str.slice(6))
             .when(pl.col("fmt") == 3).then(pl.lit("00") + cc + num)
             .otherwise(num))
    date = pl.date(2000, 1, 1) + pl.duration(days=pl.col("days"))
    created = (pl.when(pl.col("fmt") == 0).then(date.dt.strftime("%Y-%m-%d"))
               .when(pl.col("fmt") == 1).then(date.dt.strftime("%d/%m/%Y"))
               .when(pl.col("fmt") == 2).then(date.dt.strftime("%m/%d/%Y"))
               .when(pl.col("fmt") == 3).then(date.dt.strftime("%Y-%m-%d") + "T10:30:00")
               .otherwise(date.dt.strftime("%d %b %Y")))
    out = df.select(
        pl.format("C{}", pl.col("id")).alias("customer_id"),
        email.alias("email"), pl.col("first").alias("first_name"),
        pl.col("last").alias("last_name"), phone.alias("phone"),
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
