import pytest

from wenlm.training.data.pii import (
    PII_KINDS,
    is_card_number,
    is_valid_chinese_id,
    pii_placeholders,
    scrub_pii,
)

PLACEHOLDERS = pii_placeholders()

# Resident IDs (region 110101, born 1990-03-07) with correct MOD 11-2 check characters.
VALID_ID = "110101199003076632"
VALID_ID_WITH_X = "11010119900307109X"


def test_placeholders_match_the_tokenizer_contract():
    assert PLACEHOLDERS == {
        "email": "<|email|>",
        "phone": "<|phone|>",
        "id_number": "<|id|>",
        "ip": "<|ip|>",
        "card": "<|card|>",
    }


@pytest.mark.parametrize(
    "text, kind, found",
    [
        ("write to zhang.san+news@mail.example.com.cn today", "email", "zhang.san+news@mail.example.com.cn"),
        ("联系邮箱abc_1@qq.com谢谢", "email", "abc_1@qq.com"),
        ("Mail bob@example.org.", "email", "bob@example.org"),
        ("电话13812345678", "phone", "13812345678"),
        ("call +86 138 1234 5678 now", "phone", "+86 138 1234 5678"),
        ("手机：138-1234-5678。", "phone", "138-1234-5678"),
        ("办公室 010-12345678 转", "phone", "010-12345678"),
        ("深圳 (0755)1234567", "phone", "(0755)1234567"),
        ("US office +1 415-555-0132.", "phone", "+1 415-555-0132"),
        ("call (415) 555-0132 please", "phone", "(415) 555-0132"),
        ("London +44 20 7946 0958", "phone", "+44 20 7946 0958"),
        ("fax 415.555.0132", "phone", "415.555.0132"),
        (f"身份证号{VALID_ID}。", "id_number", VALID_ID),
        (f"id {VALID_ID_WITH_X.lower()}", "id_number", VALID_ID_WITH_X.lower()),
        ("server at 192.168.1.20, port 80", "ip", "192.168.1.20"),
        ("Host 8.8.8.8.", "ip", "8.8.8.8"),
        ("地址255.255.255.0", "ip", "255.255.255.0"),
        ("card 4111111111111111 expired", "card", "4111111111111111"),
        ("卡号 4111 1111 1111 1111。", "card", "4111 1111 1111 1111"),
        ("amex 3782-822463-10005", "card", "3782-822463-10005"),
        ("银联 6222021234567890128 ok", "card", "6222021234567890128"),
    ],
)
def test_scrubs_positive_examples(text, kind, found):
    scrubbed, counts = scrub_pii(text)
    assert found not in scrubbed
    assert scrubbed == text.replace(found, PLACEHOLDERS[kind])
    assert counts[kind] == 1
    assert sum(counts.values()) == 1


@pytest.mark.parametrize(
    "text",
    [
        "In 2024 the price rose from 12.50 to 1299.99 yuan.",
        "Released version 1.2.3 and v1.2.3.4 and version 2.0.0.1 and 版本 3.1.4.1",
        "ISBN 978-3-16-148410-0 is a book number.",
        "Dates: 2024-01-15, 2024.01.15, 15/01/2024, 12:30:45.",
        "Population 1400000000 people; 3.14159265 is pi.",
        "An order number 20240115123450 fails Luhn, so it is not a card; 6222021234567890123 neither.",
        "Invalid octets 256.1.1.1 and 1.2.3.4.5 are not addresses.",
        "Not an ID: 110101199002300000 (Feb 30) or 110101199003076631 (bad checksum).",
        "Not a phone: 12345678901 (mobiles start with 13-19), 1 + 2 = 3.",
        "The sum 1 + 234 567 is arithmetic.",
        "Repeated digits 0000 0000 0000 0000 are placeholders, not cards.",
        "math a@b and user@localhost have no domain.",
        "大家好，今天是2024年1月15日，气温25.5度。",
    ],
)
def test_leaves_negative_examples_alone(text):
    scrubbed, counts = scrub_pii(text)
    assert scrubbed == text
    assert counts == dict.fromkeys(PII_KINDS, 0)


def test_version_decision_four_part_numbers_without_marker_are_addresses():
    scrubbed, counts = scrub_pii("upgrade to 1.2.3.4 today")
    assert scrubbed == "upgrade to <|ip|> today"
    assert counts["ip"] == 1


def test_counts_several_kinds_in_one_text():
    text = (
        f"张三 zs@example.com 13800138000 ID {VALID_ID}, 10.0.0.1 card 4111-1111-1111-1111; "
        "李四 ls@example.com +1 (415) 555-0132"
    )
    scrubbed, counts = scrub_pii(text)
    assert counts == {"email": 2, "phone": 2, "id_number": 1, "ip": 1, "card": 1}
    for secret in ("zs@example.com", "13800138000", VALID_ID, "10.0.0.1", "4111-1111-1111-1111", "555-0132"):
        assert secret not in scrubbed
    assert scrubbed.startswith(
        "张三 <|email|> <|phone|> ID <|id|>, <|ip|> card <|card|>; 李四 <|email|> <|phone|>"
    )


def test_id_validator_checks_date_and_checksum():
    assert is_valid_chinese_id(VALID_ID)
    assert is_valid_chinese_id(VALID_ID_WITH_X)
    assert not is_valid_chinese_id(VALID_ID[:-1] + "1")  # wrong check character
    assert not is_valid_chinese_id("110101199002306637")  # 30 February
    assert not is_valid_chinese_id("110101180003076639")  # year 1800 out of range


def test_card_validator_checks_luhn_and_grouping():
    assert is_card_number("4111111111111111")
    assert not is_card_number("4111111111111112")
    assert not is_card_number("4111 1111-1111 1111")  # mixed separators
    assert not is_card_number("41 11111111 111111")  # unusual grouping
    assert not is_card_number("411111111111")  # 12 digits
    assert is_card_number("6222021234567890128")
    assert not is_card_number("6222021234567890123")


def test_scrubbing_is_idempotent():
    once, _ = scrub_pii(f"a@b.cn 13812345678 {VALID_ID} 1.1.1.1 4111111111111111")
    twice, counts = scrub_pii(once)
    assert twice == once
    assert sum(counts.values()) == 0
