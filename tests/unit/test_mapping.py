from creditlake.ingest.overrides import SourceOverrides, SourceRule
from creditlake.rules.mapping import canonical, infer_mapping, is_person_source


def test_synonyms_are_case_space_and_punctuation_insensitive():
    cols = ["E-mail", "First Name", "last_name", "Tel", "ZIP", "Signup Date", "Account Status"]
    m = infer_mapping(cols)
    assert m.targets["email"] == ["E-mail"]
    assert m.targets["name.first"] == ["First Name"]
    assert m.targets["name.last"] == ["last_name"]
    assert m.targets["phone"] == ["Tel"]
    assert m.targets["created_date"] == ["Signup Date"]
    assert m.targets["status"] == ["Account Status"]
    assert m.metadata == ["ZIP"]  # unmapped columns are kept, never dropped


def test_email_spellings():
    for col in ("email", "E-Mail", "email_address", "Email Address", "mail", "MAIL"):
        assert infer_mapping([col]).targets == {"email": [col]}, col
    assert canonical(" E-Mail Address ") == "emailaddress"


def test_second_column_for_same_target_goes_to_metadata():
    m = infer_mapping(["email", "Email Address", "phone"])
    assert m.targets["email"] == ["email"]
    assert "Email Address" in m.metadata


def test_nested_names_fall_back_to_last_segment():
    m = infer_mapping(["contact.email", "contact.phone", "profile.nickname"])
    assert m.targets["email"] == ["contact.email"]
    assert m.targets["phone"] == ["contact.phone"]
    assert m.metadata == ["profile.nickname"]


def test_overrides_win_and_can_force_metadata():
    m = infer_mapping(["Kontakt", "email"], {"Kontakt": "email", "email": "metadata"})
    assert m.targets == {"email": ["Kontakt"]}
    assert m.metadata == ["email"]


def test_person_source_detection():
    assert is_person_source(["id", "email", "name"])
    assert not is_person_source(["order_id", "amount", "sku"])


def test_overrides_from_yaml(tmp_path):
    f = tmp_path / "mappings.yaml"
    f.write_text('sources:\n  - match: "crm/*.csv"\n    columns: {Kontakt: email}\n'
                 '    default_country: DE\n    date_format: "%d.%m.%Y"\n')
    o = SourceOverrides.from_yaml(f)
    assert o.for_source("crm/a.csv").default_country == "DE"
    assert o.for_source("other.csv") == SourceRule()
    f.write_text("sources:\n  - match: x\n    colums: {}\n")
    try:
        SourceOverrides.from_yaml(f)
    except ValueError as exc:
        assert "colums" in str(exc)
    else:
        raise AssertionError("unknown key accepted")
