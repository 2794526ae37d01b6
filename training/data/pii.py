"""Rule-based scrubbing of personal data (PII) from pretraining text.

``scrub_pii(text)`` replaces e-mail addresses, phone numbers, Chinese resident ID numbers, IPv4 addresses
and bank-card numbers with placeholder tokens and returns how many of each kind it replaced.

Decisions (the tests pin each of them down):

* Kinds are scrubbed in the order email, id_number, card, ip, phone.  Longer, better-validated patterns
  go first so a shorter pattern never claims part of them; placeholders contain no digits, so a later pass
  cannot match inside an earlier replacement.
* Digit boundaries are checked against ASCII letters and digits only.  Chinese characters count as word
  characters in Python's ``\\w``, and ``电话13812345678`` must still be found.
* Chinese resident ID numbers: 18 characters, a plausible region code, a real calendar date between
  1900 and 2099 and a correct ISO 7064 MOD 11-2 check character.  Requiring the checksum keeps random
  18-digit numbers (order numbers, timestamps) out; mistyped ID numbers are missed.  The old 15-digit
  format is not handled.
* Bank cards: 13-19 digits, written either without separators or in the usual groups (4-4-4-4[-1..3],
  Amex 4-6-5, Diners 4-6-4) with one consistent space or dash, passing the Luhn check, and not a single
  repeated digit.  Grouping rules keep ISBNs and other dashed numbers out; an ungrouped 13-19 digit
  number that happens to pass Luhn (1 in 10) is still scrubbed.
* IPv4: four dot-separated octets 0-255 without leading zeros, not part of a longer dotted run.
  A four-part version string such as ``1.2.3.4`` is syntactically an IPv4 address; it is kept only when
  written as a version (``v1.2.3.4``, ``version 1.2.3.4``, ``版本 1.2.3.4``), otherwise it is scrubbed.
  Three-part versions (``1.2.3``) and prices (``12.50``) never match.
* Phones: Chinese mobiles (``13812345678``, ``138 1234 5678``, ``+86 138 1234 5678``), Chinese landlines
  with an area code and a dash or parentheses (``010-12345678``, ``(0755)1234567``), North American
  numbers with punctuation (``(415) 555-0132``, ``415-555-0132``), and any ``+``-prefixed international
  number with 8-15 digits in groups (``+44 20 7946 0958``).  Bare digit runs other than Chinese mobiles
  are not treated as phones, so years, prices and counts are left alone.
"""

from __future__ import annotations

import datetime
import re

from wenlm.tokenization import PII_PLACEHOLDERS

PII_KINDS = ("email", "phone", "id_number", "ip", "card")


def pii_placeholders() -> dict[str, str]:
    """The placeholder token of each kind: the tokenizer must know them as tokens, so the tokenization package
    defines them."""
    return dict(PII_PLACEHOLDERS)


_NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"

_EMAIL = re.compile(
    r"(?<![0-9A-Za-z._%+-])[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}" + _NOT_ALNUM_AFTER
)

_ID_NUMBER = re.compile(
    _NOT_ALNUM_BEFORE
    + r"([1-9]\d{5})((?:19|20)\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(\d{3})([0-9Xx])"
    + _NOT_ALNUM_AFTER
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"

# A digit run with optional single separators; the grouping and Luhn checks happen in Python.
_CARD_CANDIDATE = re.compile(r"(?<![0-9A-Za-z.,])\d(?:[ -]?\d){12,22}(?![0-9A-Za-z]|[.,]\d)")
_CARD_GROUPINGS = ((4, 4, 4, 4), (4, 4, 4, 4, 1), (4, 4, 4, 4, 2), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4))

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(r"(?<![0-9A-Za-z.])" + _OCTET + r"(?:\." + _OCTET + r"){3}(?![0-9A-Za-z]|\.\d)")
_VERSION_MARKER = re.compile(r"(?:\b(?:v|version|ver\.?)\s*|版本\s*[:：]?\s*)$", re.IGNORECASE)

_PHONE_PATTERNS = (
    # Chinese mobile, optionally with +86/0086 and 3-4-4 grouping.
    re.compile(r"(?<![0-9A-Za-z+])(?:(?:\+|00)86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}" + _NOT_ALNUM_AFTER),
    # Chinese landline: area code 0xx/0xxx with a dash or in parentheses.
    re.compile(r"(?<![0-9A-Za-z])(?:0\d{2,3}-|\(0\d{2,3}\)\s?)\d{7,8}(?:-\d{1,5})?" + _NOT_ALNUM_AFTER),
    # International with a leading +: country code then 2-5 digit groups.
    re.compile(r"(?<![0-9A-Za-z+])\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){2,5}" + _NOT_ALNUM_AFTER),
    # North American without country code: (415) 555-0132, 415-555-0132, 415.555.0132.
    re.compile(r"(?<![0-9A-Za-z(])(?:\(\d{3}\)\s?|\d{3}[-.])\d{3}[-.]\d{4}" + _NOT_ALNUM_AFTER),
)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def is_valid_chinese_id(candidate: str) -> bool:
    match = _ID_NUMBER.fullmatch(candidate)
    if match is None:
        return False
    _, year, month, day, _, _ = match.groups()
    try:
        datetime.date(int(year), int(month), int(day))
    except ValueError:
        return False
    checksum = sum(int(char) * weight for char, weight in zip(candidate[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[checksum % 11] == candidate[17].upper()


def is_card_number(candidate: str) -> bool:
    separators = set(re.findall(r"[ -]", candidate))
    if len(separators) > 1:
        return False
    digits = re.sub(r"[ -]", "", candidate)
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    if separators:
        group_lengths = tuple(len(group) for group in re.split(r"[ -]", candidate))
        if group_lengths not in _CARD_GROUPINGS:
            return False
    return _luhn_valid(digits)


def _phone_digit_count_ok(candidate: str) -> bool:
    digit_count = sum(char.isdigit() for char in candidate)
    return 8 <= digit_count <= 15


def scrub_pii(text: str) -> tuple[str, dict[str, int]]:
    """Replace personal data in ``text`` with placeholder tokens; return (new_text, counts_by_kind)."""
    placeholders = pii_placeholders()
    counts = dict.fromkeys(PII_KINDS, 0)

    def substitute(kind: str, pattern: re.Pattern, accept, source: str) -> str:
        def replace(match: re.Match) -> str:
            if not accept(match):
                return match.group(0)
            counts[kind] += 1
            return placeholders[kind]

        return pattern.sub(replace, source)

    text = substitute("email", _EMAIL, lambda m: True, text)
    text = substitute("id_number", _ID_NUMBER, lambda m: is_valid_chinese_id(m.group(0)), text)
    text = substitute("card", _CARD_CANDIDATE, lambda m: is_card_number(m.group(0)), text)

    def is_address_not_version(match: re.Match) -> bool:
        preceding = match.string[max(0, match.start() - 10) : match.start()]
        return _VERSION_MARKER.search(preceding) is None

    text = substitute("ip", _IPV4, is_address_not_version, text)
    for pattern in _PHONE_PATTERNS:
        text = substitute("phone", pattern, lambda m: _phone_digit_count_ok(m.group(0)), text)
    return text, counts
