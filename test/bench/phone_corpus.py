#!/usr/bin/env python3
"""Writes a corpus of phone numbers as people write them, as CSV on stdout:
value, country, expected, country_iso, form. `expected` is the international
number Meta should receive (calling code and national significant number), or
empty when no correct number can be known (a national number without its
country, or with a country nobody can recognise).

Twenty countries; for each, numbers in international form ("+49 151 ...",
"0049 ...", "+49 (0)151 ...", with an extension), in national form (trunk
prefix, spaces, dashes, dots, parentheses, an extension), and the country
column written as an ISO code, an English name, the country's own name, NULL
or an unknown name. Deterministic: the same corpus on every run.

    test/bench/phone_corpus.py [NUMBERS_PER_COUNTRY] > corpus.csv   # default 12
"""

import csv
import random
import sys

# iso, calling code, trunk prefix, national significant number pattern (x: any
# digit), English name, own name, how a national number is grouped.
COUNTRIES = [
    ("DE", "49", "0", "151xxxxxxxx", "Germany", "Deutschland", (3, 4, 4)),
    ("GB", "44", "0", "7700xxxxxx", "United Kingdom", "Reino Unido", (4, 3, 3)),
    ("FR", "33", "0", "6xxxxxxxx", "France", "Frankreich", (1, 2, 2, 2, 2)),
    ("ES", "34", "", "6xxxxxxxx", "Spain", "España", (3, 3, 3)),
    ("IT", "39", "", "3xxxxxxxxx", "Italy", "Italia", (3, 3, 4)),
    ("NL", "31", "0", "6xxxxxxxx", "Netherlands", "Nederland", (1, 4, 4)),
    ("BE", "32", "0", "47xxxxxxx", "Belgium", "België", (3, 2, 2, 2)),
    ("AT", "43", "0", "664xxxxxxx", "Austria", "Österreich", (3, 7)),
    ("CH", "41", "0", "79xxxxxxx", "Switzerland", "Schweiz", (2, 3, 2, 2)),
    ("PL", "48", "", "5xxxxxxxx", "Poland", "Polska", (3, 3, 3)),
    ("SE", "46", "0", "70xxxxxxx", "Sweden", "Sverige", (2, 3, 2, 2)),
    ("PT", "351", "", "91xxxxxxx", "Portugal", "Portugal", (3, 3, 3)),
    ("DK", "45", "", "2xxxxxxx", "Denmark", "Danmark", (2, 2, 2, 2)),
    ("US", "1", "", "650xxxxxxx", "United States", "United States", (3, 3, 4)),
    ("MX", "52", "", "55xxxxxxxx", "Mexico", "México", (2, 4, 4)),
    ("BR", "55", "0", "119xxxxxxxx", "Brazil", "Brasil", (2, 5, 4)),
    ("JP", "81", "0", "90xxxxxxxx", "Japan", "日本", (2, 4, 4)),
    ("RU", "7", "8", "9xxxxxxxxx", "Russia", "Россия", (3, 3, 2, 2)),
    ("IN", "91", "0", "9xxxxxxxxx", "India", "भारत", (5, 5)),
    ("AU", "61", "0", "4xxxxxxxx", "Australia", "Australia", (3, 3, 3)),
]


def grouped(digits, groups, separator):
    parts, at = [], 0
    for size in groups:
        parts.append(digits[at:at + size])
        at += size
    if at < len(digits):
        parts.append(digits[at:])
    return separator.join(part for part in parts if part)


def national_forms(trunk, nsn, groups, iso):
    forms = [
        ("national spaced", trunk + grouped(nsn, groups, " ")),
        ("national dashed", trunk + grouped(nsn, groups, "-")),
        ("national dotted", trunk + grouped(nsn, groups, ".")),
        ("national plain", trunk + nsn),
        ("national with extension", trunk + grouped(nsn, groups, " ") + " ext. 12"),
    ]
    if iso == "US":
        forms.append(("national parentheses", f"({nsn[:3]}) {nsn[3:6]}-{nsn[6:]}"))
    elif trunk == "0":
        forms.append(("national parentheses", f"(0{nsn[:groups[0]]}) {nsn[groups[0]:]}"))
    return forms


def international_forms(code, trunk, nsn, groups):
    forms = [
        ("international spaced", f"+{code} {grouped(nsn, groups, ' ')}"),
        ("international plain", f"+{code}{nsn}"),
        ("international 00", f"00{code} {grouped(nsn, groups, ' ')}"),
        ("international with extension", f"+{code} {grouped(nsn, groups, ' ')} x5"),
    ]
    if trunk == "0":
        forms.append(("international with (0)", f"+{code} (0){grouped(nsn, groups, ' ')}"))
    return forms


def main():
    per_country = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    rng = random.Random(20261203)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["value", "country", "expected", "country_iso", "form"])
    for iso, code, trunk, pattern, english, own, groups in COUNTRIES:
        for _ in range(per_country):
            nsn = "".join(str(rng.randrange(10)) if c == "x" else c for c in pattern)
            expected = code + nsn
            country_columns = [iso, iso.lower(), english, own]
            for form, value in national_forms(trunk, nsn, groups, iso):
                for country in country_columns:
                    out.writerow([value, country, expected, iso, form])
                # Nobody can know whose national number this is.
                out.writerow([value, "Atlantis", "", iso, form + ", unknown country"])
                if trunk:
                    out.writerow([value, "", "", iso, form + ", no country"])
            for form, value in international_forms(code, trunk, nsn, groups):
                for country in (rng.choice(country_columns), "", "Atlantis"):
                    out.writerow([value, country, expected, iso, form])


if __name__ == "__main__":
    main()
