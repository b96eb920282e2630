import pytest

from factoryhub.spawners.port_report import format_port_report, parse_port_report


def test_round_trip():
    assert parse_port_report(format_port_report(37201)) == 37201


@pytest.mark.parametrize(
    "comment",
    [
        "",
        "(null)",
        "37201",
        "fhport:80",
        "fhport:99999",
        "fhport:3720a",
        "fhport: 37201",
        "fhport:37201\n",
        "fhport:37201;host=evil",
        "host=10.0.0.9 fhport:37201",
        "fhport:٣٧٢٠١",
        "FHPORT:37201",
    ],
)
def test_anything_but_a_port_is_ignored(comment):
    assert parse_port_report(comment) is None


def test_format_refuses_privileged_ports():
    with pytest.raises(ValueError):
        format_port_report(22)
