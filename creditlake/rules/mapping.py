"""Header -> master-schema mapping via a synonym table.

Matching is case/spacing/punctuation-insensitive ("E-mail", "email_address", "Email Address"
all become "emailaddress"). Columns that match nothing go to `metadata`, never dropped.
Parts (first/last name, address lines) are mapped to *part* targets and joined later.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# target -> synonyms (already in canonical form: lowercase alphanumerics only)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "email": ("email", "emailaddress", "mail", "email1", "emailaddr", "contactemail",
              "useremail", "primaryemail", "emailid", "courriel", "mailaddress"),
    "name": ("name", "fullname", "customername", "contactname", "displayname", "personname",
             "clientname", "nom"),
    "name.first": ("firstname", "first", "givenname", "fname", "forename", "given",
                   "prenom", "vorname"),
    "name.middle": ("middlename", "middle", "mname", "middleinitial"),
    "name.last": ("lastname", "last", "surname", "familyname", "lname", "nachname"),
    "phone": ("phone", "phonenumber", "tel", "telephone", "mobile", "mobilephone", "cell",
              "cellphone", "phoneno", "msisdn", "contactnumber", "mobileno", "telefon",
              "telephonenumber", "mobilenumber", "cellnumber", "primaryphone"),
    "user_id": ("userid", "id", "uid", "customerid", "accountid", "memberid", "externalid",
                "recid", "clientid", "personid", "contactid", "customerno", "accountnumber",
                "accountno", "userno", "memberno", "clientno", "customernumber"),
    "address": ("address", "streetaddress", "addr", "fulladdress", "postaladdress",
                "mailingaddress"),
    "address.street_number": ("streetnumber", "housenumber", "streetno", "houseno",
                              "buildingnumber"),
    "address.line1": ("address1", "addressline1", "street", "street1", "addr1", "line1",
                      "streetname"),
    "address.line2": ("address2", "addressline2", "street2", "addr2", "line2", "apartment",
                      "suite", "unit"),
    "city": ("city", "town", "locality", "suburb", "municipality", "cityname", "ville",
             "stadt"),
    "country": ("country", "countrycode", "nation", "countryname", "countryiso", "iso2",
                "countryregion", "land", "pays"),
    "created_date": ("createddate", "created", "createdat", "signupdate", "registrationdate",
                     "joindate", "datecreated", "registered", "registeredat", "signedup",
                     "joined", "creationdate", "createdon", "memberSince".lower(),
                     "customersince", "since", "dateadded", "signupat"),
    "status": ("status", "accountstatus", "userstatus", "customerstatus", "memberstatus",
               "active", "isactive", "stateofaccount", "accountstate"),
}
# Address parts are joined in this order into `address`.
ADDRESS_PARTS = ("address.street_number", "address.line1", "address.line2")
NAME_PARTS = ("name.first", "name.middle", "name.last")

_CANON = re.compile(r"[^0-9a-z]+")


def canonical(header: str) -> str:
    return _CANON.sub("", header.strip().lower())


_LOOKUP: dict[str, str] = {syn: target for target, syns in SYNONYMS.items() for syn in syns}


@dataclass(frozen=True)
class ColumnMapping:
    """How one source's columns map onto the master schema."""

    targets: dict[str, list[str]] = field(default_factory=dict)  # target -> source columns
    metadata: list[str] = field(default_factory=list)  # unmapped source columns

    def to_json(self) -> str:
        return json.dumps({"targets": self.targets, "metadata": self.metadata}, sort_keys=True)

    @property
    def fields(self) -> set[str]:
        """Master fields this source can fill (parts count for their whole)."""
        return {t.split(".")[0] for t in self.targets}

    def has_identity(self) -> bool:
        return bool(self.fields & {"email", "phone", "user_id"})


def infer_mapping(columns: Iterable[str], overrides: Mapping[str, str] | None = None,
                  ignore: Iterable[str] = ("source_row",)) -> ColumnMapping:
    """Map source columns to targets. `overrides` maps a source column to a target
    ("metadata" to force a column into metadata). The first column claiming a target wins;
    later ones with the same target go to metadata so no value is silently dropped."""
    overrides = dict(overrides or {})
    ignored = set(ignore)
    targets: dict[str, list[str]] = {}
    metadata: list[str] = []
    for col in columns:
        if col in ignored:
            continue
        # nested JSON/XML names ("contact.phone") fall back to their last segment
        target = overrides.get(col) or _LOOKUP.get(canonical(col)) or (
            _LOOKUP.get(canonical(col.rsplit(".", 1)[-1])) if "." in col else None)
        if target is None or target == "metadata" or target in targets and "." not in target:
            metadata.append(col)
        else:
            targets.setdefault(target, []).append(col)
    return ColumnMapping(targets=targets, metadata=metadata)


def is_person_source(columns: Iterable[str]) -> bool:
    """A source describes people if it maps at least one identity field and one more field."""
    m = infer_mapping(columns)
    return m.has_identity() and len(m.fields) >= 2
