"""Generated people records with realistic duplicates: for training, tests and benchmarks.

Each person has a stable `person` number (kept in metadata as "ref": the ground truth).
Duplicates carry typical defects: typos (substitution, deletion, transposition), nicknames,
abbreviated streets, missing fields, a changed e-mail domain, a re-typed phone, a day/month
swap in the birth date. A share of records carry placeholder values (test@test.com,
000-000-0000, N/A) that must not glue people together.
Vectorized with NumPy where it matters; generation is test tooling, not a hot path.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST = _words(
    "james john robert michael william david richard joseph thomas charles christopher daniel "
    "matthew anthony mark donald steven paul andrew joshua kenneth kevin brian george timothy "
    "ronald edward jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin "
    "scott brandon benjamin samuel gregory alexander frank patrick raymond jack dennis jerry "
    "tyler aaron jose adam nathan henry douglas zachary peter kyle ethan walter noah jeremy "
    "christian keith roger terry gerald harold sean austin carl arthur lawrence dylan jesse "
    "jordan bryan billy joe bruce gabriel logan albert willie alan juan wayne elijah randy roy "
    "vincent ralph eugene russell bobby mason philip louis mary patricia jennifer linda "
    "elizabeth barbara susan jessica sarah karen lisa nancy betty margaret sandra ashley "
    "kimberly emily donna michelle carol amanda dorothy melissa deborah stephanie rebecca "
    "sharon laura cynthia kathleen amy angela shirley anna brenda pamela emma nicole helen "
    "samantha katherine christine debra rachel carolyn janet catherine maria heather diane ruth "
    "julie olivia joyce virginia victoria kelly lauren christina joan evelyn judith megan "
    "andrea cheryl hannah jacqueline martha gloria teresa ann sara madison frances kathryn "
    "janice jean abigail alice judy sophia grace denise amber doris marilyn danielle beverly "
    "isabella theresa diana natalie brittany charlotte marie kayla alexis lori"
)
NICK = {"william": "bill", "robert": "bob", "richard": "dick", "james": "jim",
        "michael": "mike", "elizabeth": "liz", "katherine": "kate", "jennifer": "jenny",
        "thomas": "tom", "joseph": "joe", "margaret": "maggie", "christopher": "chris",
        "daniel": "dan", "matthew": "matt", "anthony": "tony", "samantha": "sam",
        "alexander": "alex", "rebecca": "becky", "jonathan": "jon", "patricia": "pat"}
SYL = _words(
    "an ber son ley ton ford well ham ing ris mor gan hal wick lan der ster ville mill cot dale "
    "wood field brook shaw man ker lock hart crest bell rick sen vin ott ard ell ish"
)
STREET = _words(
    "high church station park victoria green manor mill queens kings school north south west "
    "east london york grange hill lake river forest elm oak maple cedar pine willow chestnut "
    "meadow spring sunset"
)
STREET_TYPE = (("street", "st"), ("road", "rd"), ("avenue", "ave"), ("lane", "ln"),
               ("drive", "dr"), ("close", "close"), ("court", "ct"), ("place", "pl"))
DOMAINS = _words(
    "gmail.com yahoo.com hotmail.com outlook.com icloud.com aol.com proton.me mail.de web.de "
    "orange.fr btinternet.com comcast.net"
)
COUNTRIES = ("US", "GB", "DE", "FR", "AU", "CA")
PLACEHOLDER_EMAILS = ("test@test.com", "n/a", "noemail@example.com", "unknown")
PLACEHOLDER_PHONES = ("000-000-0000", "N/A", "1234567890", "999-999-9999")


def _surnames(rng: np.random.Generator, n: int) -> list[str]:
    a, b, c = (rng.choice(SYL, n) for _ in range(3))
    k = rng.random(n)
    return [x + y + (z if kk < 0.4 else "") for x, y, z, kk in zip(a, b, c, k, strict=True)]


def _typo(s: str, r: float) -> str:
    if len(s) < 3:
        return s
    i = int(r * 1000) % (len(s) - 1)
    kind = int(r * 10_000) % 3
    if kind == 0:  # substitution
        return s[:i] + "aeioulnrst"[int(r * 97) % 10] + s[i + 1:]
    if kind == 1:  # deletion
        return s[:i] + s[i + 1:]
    return s[:i] + s[i + 1] + s[i] + s[i + 2:]  # transposition


def _zipf_choice(rng: np.random.Generator, vocab: list[str] | tuple[str, ...], n: int,
                 a: float = 0.7) -> np.ndarray:
    w = 1.0 / np.arange(1, len(vocab) + 1) ** a
    return rng.choice(np.array(vocab, dtype=object), n, p=w / w.sum())


def generate_people(n_records: int, *, seed: int = 7, dup_rate: float = 0.35,
                    placeholder_rate: float = 0.01) -> pa.Table:
    """Records in master-schema shape (+ metadata with dob, postcode, ref = person number)."""
    rng = np.random.default_rng(seed)
    n_people = max(1, int(n_records / (1 + dup_rate)))
    surname_vocab = sorted(set(_surnames(rng, 20_000)))
    rng.shuffle(surname_vocab)
    first = _zipf_choice(rng, FIRST, n_people, 0.6)
    last = _zipf_choice(rng, surname_vocab, n_people, 0.5)
    n_cities = 400
    city_vocab = [w.capitalize() for w in sorted(set(_surnames(rng, 2000)))][:n_cities]
    city_idx = rng.integers(0, len(city_vocab), n_people)
    dob = np.datetime64("1940-01-01") + rng.integers(0, 65 * 365, n_people).astype(
        "timedelta64[D]")
    phone = rng.integers(2_000_000_000, 9_999_999_999, n_people)
    house = rng.integers(1, 300, n_people)
    street = rng.choice(STREET, n_people)
    stype = rng.integers(0, len(STREET_TYPE), n_people)
    dom = _zipf_choice(rng, DOMAINS, n_people, 1.0)
    num = rng.integers(0, 100, n_people)
    country = rng.choice(COUNTRIES, n_people)

    # Which person each record belongs to: every person once, the rest duplicates.
    extra = rng.integers(0, n_people, n_records - n_people)
    person = np.concatenate([np.arange(n_people), extra])
    rng.shuffle(person)
    seen: set[int] = set()
    rand = rng.random((n_records, 14))
    base_day = date(2020, 1, 1)
    rows: dict[str, list] = {k: [] for k in (
        "email", "name", "phone", "address", "city", "country", "created_date", "user_id",
        "metadata")}
    for i, p in enumerate(person.tolist()):
        r = rand[i]
        dup = p in seen
        seen.add(p)
        fn, ln = str(first[p]), str(last[p])
        email = f"{fn}.{ln}{num[p] if num[p] > 50 else ''}@{dom[p]}"
        ph = str(phone[p])
        addr_type = STREET_TYPE[stype[p]]
        address = f"{house[p]} {street[p].capitalize()} {addr_type[0].capitalize()}"
        d = str(dob[p])
        if dup:
            if r[0] < 0.25:
                fn = _typo(fn, r[1])
            elif r[0] < 0.32:
                fn = NICK.get(fn, fn)
            if r[2] < 0.25:
                ln = _typo(ln, r[3])
            if r[4] < 0.2:
                email = ""
            elif r[4] < 0.3:
                email = email.split("@")[0] + "@" + DOMAINS[int(r[5] * len(DOMAINS))]
            if r[6] < 0.2:
                ph = ""
            elif r[6] < 0.3:
                ph = ph[:-1] + str(int(r[7] * 10))
            if r[8] < 0.3:
                address = f"{house[p]} {street[p].capitalize()} {addr_type[1].capitalize()}"
            elif r[8] < 0.4:
                address = _typo(address, r[9])
            if r[10] < 0.15:
                d = ""
            elif r[10] < 0.2 and int(d[8:10]) <= 12:
                d = d[:5] + d[8:10] + "-" + d[5:7]
            elif r[10] < 0.24:  # one mistyped day digit
                d = d[:9] + str(int(r[12] * 10))
                d = d if d[8:] not in ("00", "30", "31") else d[:8] + "28"
        city = city_vocab[city_idx[p]]
        if dup and r[12] < 0.05:
            city = _typo(city, r[13])
        if r[11] < placeholder_rate:
            email = PLACEHOLDER_EMAILS[i % len(PLACEHOLDER_EMAILS)]
            ph = PLACEHOLDER_PHONES[i % len(PLACEHOLDER_PHONES)]
        fmt_phone = f"{ph[:3]}-{ph[3:6]}-{ph[6:]}" if len(ph) == 10 else ph
        rows["email"].append(email)
        rows["name"].append(f"{fn.capitalize()} {ln.capitalize()}")
        rows["phone"].append(fmt_phone)
        rows["address"].append(address)
        rows["city"].append(city)
        rows["country"].append(str(country[p]))
        rows["created_date"].append(base_day + timedelta(days=int(r[11] * 1500)))
        # A CRM id on some of a person's records (same id = same person).
        rows["user_id"].append(f"C{p:08d}" if r[13] < 0.3 else "")
        postcode = f"{(city_idx[p] * 37 + 10000) % 90000 + 10000}"
        rows["metadata"].append(json.dumps({"dob": d, "postcode": postcode, "ref": int(p)}))
    n = n_records
    now = datetime.now(UTC)
    return pa.table({
        "id": pa.array([str(u) for u in _uuids(rng, n)]),
        "source_file": pa.array([f"people_{i % 4}.csv" for i in range(n)]),
        "ingested_at": pa.array([now] * n, pa.timestamp("ms", "UTC")),
        **{k: pa.array(v) for k, v in rows.items() if k != "created_date"},
        "created_date": pa.array(rows["created_date"], pa.date32()),
        "status": pa.array(["active"] * n),
        "data_quality_score": pa.array([1.0] * n, pa.float32()),
    })


def _uuids(rng: np.random.Generator, n: int) -> list:
    import uuid

    raw = rng.bytes(16 * n)
    return [uuid.UUID(bytes=raw[i * 16:(i + 1) * 16], version=4) for i in range(n)]


def to_records_table(people: pa.Table) -> pa.Table:
    """Add the remaining master-schema columns so the rows can go straight into `records`."""
    import hashlib

    hashes = [hashlib.md5(f"{e}|{p}|{n}|{i}".encode()).hexdigest() for e, p, n, i in zip(
        people["email"].to_pylist(), people["phone"].to_pylist(), people["name"].to_pylist(),
        people["id"].to_pylist(), strict=True)]
    n = people.num_rows
    return people.append_column("record_hash", pa.array(hashes)).append_column(
        "validation_errors", pa.array([[]] * n, pa.list_(pa.string())))
