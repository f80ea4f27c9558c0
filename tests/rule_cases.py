"""Phone, e-mail, address and date-finding rule cases shared by the Polars tests and the
parity test."""

# (phone as written, country, stored phone, valid)
PHONE_CASES = [
    # North America: ten digits, area code and exchange not starting with 0/1
    ("+1 212 555 0123", None, "+12125550123", True),
    ("(212) 555-0123", "US", "+12125550123", True),
    ("1-416-555-0199", "Canada", "+14165550199", True),
    ("+1 212 555 012", None, "1212555012", False),  # nine digits (the old sample bug)
    ("(012) 555-0123", "US", "0125550123", False),  # area code starting with 0
    ("+1 112 555 0123", None, "11125550123", False),  # area code starting with 1
    # United Kingdom
    ("020 7946 0958", "UK", "+442079460958", True),
    ("07911 123456", "GB", "+447911123456", True),
    ("+44 (0)20 7946 0958", None, "+442079460958", True),  # bracketed trunk prefix
    ("07911 1234", "GB", "079111234", False),  # mobile too short
    ("+44 20 7946 09581 23", None, "4420794609581 23".replace(" ", ""), False),  # too long
    # Germany
    ("030 12345678", "Germany", "+493012345678", True),
    ("+49 151 23456789", None, "+4915123456789", True),
    ("+49 0151 23456789", None, "49015123456789", False),  # trunk 0 after the country code
    ("0151 2345678901234567", "DE", "01512345678901234567", False),  # too long
    # no country known and no international prefix: digits, flagged
    ("12345678", None, "12345678", False),
]

# (e-mail after cleaning, valid)
EMAIL_CASES = [
    ("ann.lee@example.com", True), ("a+tag@mail.co.uk", True), ("o'brien@x-y.de", True),
    ("ann@example", False),  # no dot in the domain
    ("ann lee@example.com", False), ("ann@exa mple.com", False),  # spaces
    (".ann@example.com", False), ("ann.@example.com", False), ("an..n@example.com", False),
    ("ann@-example.com", False), ("ann@example-.com", False), ("ann@example.c0m", False),
    ("ann@@example.com", False), ("@example.com", False),
]

# (address as written, no country column: the country every backend infers, or None)
ADDRESS_CASES = [
    ("12 Main St, Springfield, USA", "US"), ("1 Rue de Rivoli, Paris, France", "FR"),
    ("5 High St, Leeds, Narnia", None), ("no comma here USA", None),
]

# (created_date as written, the finding every backend gives, or None when the date is kept)
DATE_CASES = [
    ("2021-03-04", None), ("not a date", "unparseable"), ("1950-06-01", "out of range"),
    ("31/12/1969", "out of range"), ("2150-01-01", "out of range"), ("1/1/2100", None),
]
