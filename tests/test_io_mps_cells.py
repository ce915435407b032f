"""A Met count cell is a count only when written in decimal digits (crimemap/io/mps.py)."""

import pytest

from crimemap.io.crimes import Rejects, read_counts


def rejected_rows(rejects):
    return {row: text.split(":")[0] for row, text in rejects.examples}


@pytest.mark.parametrize(("cell", "count"), [("12", 12), (" 12 ", 12), ("12.0", 12), ("+3", 3), ("1e3", None),
                                           ("0x1F", None), ("1,000", None), ("inf", None), ("12.5", None),
                                           ("\u0661\u0662", None)])
def test_a_count_is_written_in_decimal_digits(tmp_path, cell, count):
    path = tmp_path / "mps_ward.csv"
    path.write_text("MajorText,MinorText,WardName,WardCode,LookUp_BoroughName,202401\n"
                    f"THEFT,SHOPLIFTING,Abbey,E05014001,Barking and Dagenham,\"{cell}\"\n", encoding="utf-8")
    rejects = Rejects()
    frame = read_counts(path, rejects=rejects)
    if count is None:
        assert rejected_rows(rejects) == {2: "non-integer count"} and frame.empty
    else:
        assert rejects.count == 0 and frame["count"].tolist() == [count]
