"""Postcode normalisation and the UK format check."""

import pytest

from crimemap.postcodes import is_valid, normalise, normalise_outcode
from crimemap.postcodes.normalise import key_of, normalise_prefix, postcode_of_key


@pytest.mark.parametrize("text, expected", [
    ("SW1A 1AA", "SW1A 1AA"),
    (" sw1a  1aa ", "SW1A 1AA"),
    ("sw1a1aa", "SW1A 1AA"),
    ("SW1A\t1AA\n", "SW1A 1AA"),
    ("s w 1 a 1 a a", "SW1A 1AA"),
    ("E1  6AN", "E1 6AN"),          # Code-Point Open's 7-character form
    ("e16an", "E1 6AN"),
    ("W1A0AX", "W1A 0AX"),          # A9A outward code
    ("EC1A 1BB", "EC1A 1BB"),       # AA9A
    ("M1 1AE", "M1 1AE"),           # A9
    ("B33 8TH", "B33 8TH"),         # A99
    ("CR2 6XH", "CR2 6XH"),         # AA9
    ("DN55 1PT", "DN55 1PT"),       # AA99
    ("gir 0aa", "GIR 0AA"),         # Girobank, outside the pattern
    ("GIR0AA", "GIR 0AA"),
    ("stHL 1zz", "STHL 1ZZ"),       # Saint Helena
    ("ASCN1ZZ", "ASCN 1ZZ"),
    ("\u00a0SW1A\u20031AA", "SW1A 1AA"),  # no-break and em spaces are whitespace too
])
def test_valid_spellings(text, expected):
    assert normalise(text) == expected
    assert is_valid(text)


@pytest.mark.parametrize("text", [
    "", " ", "SW1A", "SW1A 1A", "SW1A 1AAA", "1AA SW1A", "SW1A-1AA", "QW1 1AA",  # Q never first
    "AI1 1AA",  # I never second
    "SW1A 1CA", "SW1A 1AI", "SW1A 1AK", "SW1A 1MO", "SW1A 1AV",  # C I K M O V never in the inward code
    "SW1A 1A\u0410",  # Cyrillic A
    "SW1A 1AA\x00", "../../etc/passwd", "'; DROP TABLE postcodes; --", "<script>alert(1)</script>",
    "%00", "GIR 0AB", "ZZ99 9ZZ", "S\u0131W1 1AA", "\u00dfW1A 1AA", "x" * 10_000, "SW1A 1AA" + " " * 100,
    None, 12345, b"SW1A1AA", ["SW1A 1AA"], 1.5,
])
def test_invalid_inputs(text):
    assert normalise(text) is None
    assert not is_valid(text)


def test_outcode_and_prefix():
    assert normalise_outcode(" sw1a ") == "SW1A"
    assert normalise_outcode("GIR") == "GIR"
    assert normalise_outcode("SW1A1AA") is None
    assert normalise_prefix("sw1a 1") == "SW1A1"
    assert normalise_prefix("SW1A1AAX") is None
    assert normalise_prefix("SW;") is None


def test_keys_keep_string_order_and_round_trip():
    compact = ["E16AN", "E1W1AA", "EC1A1BB", "SW11AA", "SW111AA", "SW1A1AA", "W1A0AX", "GIR0AA"]
    assert sorted(compact, key=key_of) == sorted(compact)
    for squeezed in compact:
        assert postcode_of_key(key_of(squeezed)).replace(" ", "") == squeezed


def test_every_real_london_postcode_is_valid(need_shared):
    import pandas as pd

    path = need_shared("postcodes/codepoint_open_2025-10_london.csv.gz")
    postcodes = pd.read_csv(path, usecols=["Postcode"], dtype=str)["Postcode"]
    assert len(postcodes) == 180_792
    # Independent expectation: the file's own single-space form, lower-cased and squeezed.
    squeezed = postcodes.str.lower().str.replace(" ", "", regex=False)
    assert [normalise(p) for p in squeezed] == postcodes.tolist()


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402


@given(st.one_of(st.text(), st.binary(), st.integers(), st.none(), st.floats()))
def test_normalise_never_raises(value):
    result = normalise(value)
    assert result is None or (is_valid(result) and normalise(result) == result)
    assert is_valid(value) is (result is not None)


@given(st.from_regex(r"[A-PR-UWYZ][A-HK-Y]?[0-9][0-9]? ?[0-9][ABD-HJLNP-UW-Z]{2}", fullmatch=True),
       st.sampled_from(["lower", "upper", "squeeze", "pad"]))
def test_any_spelling_of_a_valid_postcode_normalises_the_same(postcode, spelling):
    canonical = normalise(postcode)
    assert canonical is not None
    variant = {"lower": postcode.lower(), "upper": postcode.upper(), "squeeze": postcode.replace(" ", ""),
               "pad": f"  {canonical.replace(' ', '   ')}\n"}[spelling]
    assert normalise(variant) == canonical
    outward, inward = canonical.split(" ")
    assert len(inward) == 3 and 2 <= len(outward) <= 4
