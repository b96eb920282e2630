import pytest

from factoryhub.durations import (
    DurationError,
    describe_minutes,
    format_minutes,
    parse_minutes,
    parse_walltime,
)


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("90", 90),
        ("01:30:00", 90),
        ("30:30", 31),
        ("1-00:00:00", 1440),
        ("2-4", 3120),
        ("1-02:03", 1563),
        (" 15 ", 15),
    ],
)
def test_slurm_time_forms(text, minutes):
    assert parse_minutes(text) == minutes


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1:2:3:4",
        "00:61:00",
        "1-25",
        "5:70",
        "٣٠",
        "\uff11\uff10",
        "-5",
        "1e3",
        "10 minutes",
        "UNLIMITED",
    ],
)
def test_not_times(text):
    with pytest.raises(DurationError):
        parse_minutes(text)


def test_round_trip_and_words():
    assert format_minutes(90) == "01:30:00"
    assert format_minutes(1500) == "1-01:00:00"
    assert parse_minutes(format_minutes(2 * 1440 + 7)) == 2 * 1440 + 7
    assert describe_minutes(1) == "1 minute"
    assert describe_minutes(150) == "2 h 30 min"
    assert describe_minutes(1440 + 240) == "1 day 4 h"


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("90", 90),
        ("01:30:00", 90),
        ("36:00:00", 2160),
        ("1-00:00:00", 1440),
        ("2-4", 3120),
        ("1-02:03", 1563),
        ("00:30:30", 31),
    ],
)
def test_walltimes_people_type_in_unambiguous_forms(text, minutes):
    assert parse_walltime(text) == minutes


def test_minutes_seconds_is_refused_with_its_slurm_meaning_and_the_fix():
    with pytest.raises(DurationError) as refused:
        parse_walltime("1:30")
    message = str(refused.value)
    assert "1 min 30 s to Slurm" in message and "01:30:00 or 90" in message
    with pytest.raises(DurationError, match="minutes:seconds"):
        parse_walltime("5:70")
    with pytest.raises(DurationError):
        parse_walltime("UNLIMITED")


def test_slurm_output_keeps_slurms_convention():
    # What Slurm prints (MaxTime=30:00, TimeLeft=1:30) is still minutes:seconds.
    assert parse_minutes("30:00") == 30
    assert parse_minutes("1:30") == 2
