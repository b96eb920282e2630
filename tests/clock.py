"""Times as FactoryHub's notices write them, for tests that compare: with the day when it is not
today. A window a few hours ahead crosses midnight when a test runs late in the evening (CI failed
so three times: "23:08" against the product's "3 Dec 00:08")."""

from datetime import datetime


def clock(moment: datetime) -> str:
    """ "14:00" today, "3 Dec 00:08" on another day."""
    return f"{moment:%H:%M}" if moment.date() == datetime.now().date() else f"{moment:%-d %b %H:%M}"
