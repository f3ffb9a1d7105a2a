"""Coarse regions of scans: provinces of China (ISO 3166-2:CN) with the coordinates of
their capitals, and other countries by ISO 3166-1 alpha-2 code (no coordinates).

A province is as precise as the scan log gets: enough to see a code scanned in Ganzhou
and in Urumqi on one afternoon, too coarse to locate a person.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    code: str
    en: str
    zh: str
    lat: float | None = None
    lon: float | None = None

    def name(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


_PROVINCES = (
    ("CN-AH", "Anhui", "安徽", 31.82, 117.23),
    ("CN-BJ", "Beijing", "北京", 39.90, 116.40),
    ("CN-CQ", "Chongqing", "重庆", 29.56, 106.55),
    ("CN-FJ", "Fujian", "福建", 26.07, 119.30),
    ("CN-GD", "Guangdong", "广东", 23.13, 113.26),
    ("CN-GS", "Gansu", "甘肃", 36.06, 103.83),
    ("CN-GX", "Guangxi", "广西", 22.82, 108.32),
    ("CN-GZ", "Guizhou", "贵州", 26.65, 106.63),
    ("CN-HA", "Henan", "河南", 34.75, 113.63),
    ("CN-HB", "Hubei", "湖北", 30.59, 114.31),
    ("CN-HE", "Hebei", "河北", 38.04, 114.51),
    ("CN-HI", "Hainan", "海南", 20.04, 110.34),
    ("CN-HK", "Hong Kong", "香港", 22.32, 114.17),
    ("CN-HL", "Heilongjiang", "黑龙江", 45.80, 126.53),
    ("CN-HN", "Hunan", "湖南", 28.23, 112.94),
    ("CN-JL", "Jilin", "吉林", 43.82, 125.32),
    ("CN-JS", "Jiangsu", "江苏", 32.06, 118.80),
    ("CN-JX", "Jiangxi", "江西", 28.68, 115.86),
    ("CN-LN", "Liaoning", "辽宁", 41.81, 123.43),
    ("CN-MO", "Macao", "澳门", 22.20, 113.54),
    ("CN-NM", "Inner Mongolia", "内蒙古", 40.84, 111.75),
    ("CN-NX", "Ningxia", "宁夏", 38.49, 106.23),
    ("CN-QH", "Qinghai", "青海", 36.62, 101.78),
    ("CN-SC", "Sichuan", "四川", 30.57, 104.07),
    ("CN-SD", "Shandong", "山东", 36.65, 117.12),
    ("CN-SH", "Shanghai", "上海", 31.23, 121.47),
    ("CN-SN", "Shaanxi", "陕西", 34.34, 108.94),
    ("CN-SX", "Shanxi", "山西", 37.87, 112.55),
    ("CN-TJ", "Tianjin", "天津", 39.34, 117.36),
    ("CN-TW", "Taiwan", "台湾", 25.03, 121.57),
    ("CN-XJ", "Xinjiang", "新疆", 43.83, 87.62),
    ("CN-XZ", "Tibet", "西藏", 29.65, 91.13),
    ("CN-YN", "Yunnan", "云南", 25.04, 102.71),
    ("CN-ZJ", "Zhejiang", "浙江", 30.27, 120.16),
)
PROVINCES: dict[str, Region] = {code: Region(code, *rest) for code, *rest in _PROVINCES}
_COUNTRY = re.compile(r"^[A-Z]{2}$")
EARTH_KM = 6371.0
#: "Somewhere outside China" (ISO 3166 user-assigned code), for people who say no more.
ABROAD = "ZZ"


def region(code: str | None) -> Region | None:
    """The region a code names (case-insensitive), or None if it names none."""
    if not code:
        return None
    code = code.strip().upper()
    if code in PROVINCES:
        return PROVINCES[code]
    if _COUNTRY.fullmatch(code) and code != "CN":
        return Region(code, code, code)
    return None


def distance_km(a: Region, b: Region) -> float:
    """Great-circle distance of two regions; other countries are infinitely far from
    anywhere but themselves (no coordinates are kept for them)."""
    if a.code == b.code:
        return 0.0
    if a.lat is None or b.lat is None or a.lon is None or b.lon is None:
        return math.inf
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(math.sqrt(h))
