"""The app's pages by lifecycle stage (for links such as the home page's next step)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES: dict[str, str] = {
    "data": "pages/1_Data.py",
    "train": "pages/2_Train.py",
    "compare": "pages/3_Compare.py",
    "serve": "pages/4_Serve.py",
    "production": "pages/5_Production.py",
    "drift": "pages/6_Drift.py",
}


def page_of(stage: str) -> str | None:
    """The page of a stage, relative to the app (None when there is no such page)."""
    page = PAGES.get(stage)
    return page if page and (ROOT / page).exists() else None
