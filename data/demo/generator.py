"""Generate the demonstration supplier catalog: synthetic supplier records on top of real photos.

No public source publishes real 1688 / Alibaba supplier records (MOQ, price tiers, response rate,
factory or trader), so this module builds a demonstration catalog from the two real product
catalogs bundled in ``data/catalogs``: ``luma`` (apparel, bags, fitness gear, watches) and
``appliances`` (small electrical appliances). Product names, categories, retail prices, materials,
colours, sizes, electrical ratings, weights and photos are real; every supplier, price, MOQ, lead
time and HS code below is generated or assigned here. Users bring their own supplier catalog.

Usage::

    python -m data.demo.generator [--out data/catalogs/demo] [--seed 7] [--eval-set PATH]

The eval set is written by default only when the output is the default folder.

The same seed gives byte-identical files (one ``random.Random`` per decision, seeded from the seed
and the names involved; everything sorted; JPEG parameters fixed).

Output (the supplier-catalog contract in DESIGN.md):

* ``suppliers.csv``: 60 suppliers ``S001``..``S060`` (ids shuffled, so an id says nothing about
  the kind), all in China (``CN``). 36 factories sit in clusters that fit their goods
  (``FACTORY_PLAN``): apparel in Guangzhou, Humen (Dongguan) and Hangzhou; bags in Baigou (Hebei)
  and Guangzhou; watches and electronics in Shenzhen; fitness goods in Nantong and Ningbo; small
  appliances in Ningbo, Cixi, Foshan (Shunde) and Zhongshan. 24 trading companies sit in Yiwu,
  Guangzhou and Shenzhen (``TRADER_PLAN``). Factories get more years and staff, a higher on-time
  rate and factory certificates; traders answer faster, dispatch sooner, take small batches and
  dropship, export to more markets and hold few certificates (``SUPPLIER_PROFILES``).
  ``MISSING_RESPONSE_HOURS`` and ``MISSING_STAFF`` suppliers have that cell left empty on purpose.
* ``listings.csv``: every source product with a photo (218 of 228: ten Luma products ship
  without any photo and are left out) is offered by 2 to 5 suppliers. Exactly one source
  factory lists the original photos, copied byte for byte; 1 to 4 trading companies
  (``TRADERS_PER_PRODUCT``) re-list the same product with altered copies of 1 to
  ``TRADER_PHOTOS_MAX`` of those photos. All listings of one product share its source
  ``product_id``. Listing ids are shuffled too.
* ``images/<supplier_id>/<source file name>``: the photos of each supplier.
* ``queries/``: for every product with three or more photos, one photo kept out of all listings,
  the "seller's own photo" (preferably a non-``main`` view of a colour that still has another
  photo in the catalog; otherwise a seeded pick among the non-first photos).
* ``ground_truth.json``: per product the source factory, all suppliers and listings offering it,
  its reserved query photos and HS code.
* ``README.md``: what is real and what is generated, and these numbers.
* and, from the command line, the eval set ``evals/sets/demo_reserved/demo_reserved.jsonl``: one case per
  reserved photo.

Ratios and ranges (the constants below):

* factory unit price (ex works, USD per piece) = retail ``price_usd`` x ``FACTORY_PRICE_SHARE``
  (15-35 %, drawn per product); a trading company adds ``TRADER_MARKUP`` (10-40 %).
* three price tiers at ``TIER_QUANTITY_MULTIPLIERS`` x MOQ (1x, 5x, 20x) with unit prices
  ``TIER_PRICE_FACTORS`` (100 %, 93 %, 86 %) of the base price; ``price_max`` is the first tier,
  ``price_min`` the last.
* MOQ and lead time per sector and supplier kind: ``FACTORY_MOQ`` / ``TRADER_MOQ`` and
  ``FACTORY_LEAD_DAYS`` / ``TRADER_LEAD_DAYS`` (factory MOQs rounded to ``FACTORY_MOQ_STEP``).
* weight: appliances from the source ``weight_lb``; other goods from ``WEIGHT_KG`` per product
  kind, +-``WEIGHT_JITTER`` per product.
* ``attributes`` (JSON): ``price_tiers``, ``colors`` (a trader offers the colours it shows),
  for appliances the source ``wattage``, ``voltage``, ``capacity``, ``connectivity`` where given,
  for apparel ``sizes`` (``SIZE_RUN`` sizes from the smallest size the source lists) and
  ``fibre`` (the source materials).
* altered trader photos (one alteration per copy, seeded, ``ALTERATIONS``): a re-crop removing
  ``CROP_SHARE`` (5-20 %) of width and height; a re-compression at JPEG quality
  ``LOW_JPEG_QUALITY`` (35-60); a semi-transparent watermark of the trader's short name
  (opacity ``WATERMARK_OPACITY``); or a caption bar (``CAPTIONS``, ``CAPTION_BAR_SHARE`` of the
  height) drawn with Pillow's default font. Altered copies are at most ``ALTERED_MAX_SIDE`` px on
  the longest side and saved at ``JPEG_QUALITY`` unless re-compressed.
* HS codes: the commented table ``HS_CODES`` by product kind (and, for apparel, gender and chief
  fibre). They are plausible 6-digit HS 2022 subheadings, not customs rulings.
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import html
import io
import json
import os
import random
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SOURCES = REPO_ROOT / "data" / "catalogs"
DEFAULT_OUT = DEFAULT_SOURCES / "demo"
DEFAULT_EVAL_SET = REPO_ROOT / "evals" / "sets" / "demo_reserved" / "demo_reserved.jsonl"
DEFAULT_SEED = 7
SOURCE_CATALOGS = ("luma", "appliances")

# --- prices -------------------------------------------------------------------------------------
FACTORY_PRICE_SHARE = (0.15, 0.35)  # factory ex-works unit price / retail price_usd, per product
TRADER_MARKUP = (1.10, 1.40)  # trading-company price / factory price, per listing
TIER_QUANTITY_MULTIPLIERS = (1, 5, 20)  # tier min_qty = MOQ x these
TIER_PRICE_FACTORS = (1.00, 0.93, 0.86)  # tier unit price = base price x these
CURRENCY = "USD"

# --- offer structure ----------------------------------------------------------------------------
TRADERS_PER_PRODUCT = (1, 4)  # trading companies re-listing each product (plus one factory)
TRADER_PHOTOS_MAX = 3  # a trader re-lists 1..this many of the factory's photos
RESERVE_MIN_PHOTOS = 3  # products with at least this many photos give one reserved query photo
RESERVE_VIEW_ORDER = ("back", "alt1", "alt", "side")  # preferred reserved views, best first

# --- MOQ (pieces) and lead time (days) per sector -----------------------------------------------
FACTORY_MOQ = {"apparel": (100, 500), "bags": (200, 600), "watches": (100, 500),
               "fitness": (200, 1000), "appliances": (300, 1000)}
FACTORY_MOQ_STEP = 50
TRADER_MOQ = {"apparel": (2, 30), "bags": (2, 20), "watches": (1, 10), "fitness": (5, 50),
              "appliances": (1, 10)}
FACTORY_LEAD_DAYS = {"apparel": (15, 30), "bags": (15, 30), "watches": (20, 35),
                     "fitness": (15, 30), "appliances": (25, 45)}
TRADER_LEAD_DAYS = (3, 12)

# --- weights ------------------------------------------------------------------------------------
LB_TO_KG = 0.45359237
WEIGHT_JITTER = 0.10  # +-10 % per product around WEIGHT_KG
WEIGHT_KG = {
    "hoodie": 0.55, "jacket": 0.50, "tee": 0.17, "tank": 0.14, "bra": 0.12, "pants": 0.35,
    "shorts": 0.20, "backpack": 0.80, "duffle": 0.90, "messenger": 0.70, "tote": 0.50,
    "bag": 0.55, "watch_analog": 0.12, "watch_digital": 0.10, "watch_sport": 0.12,
    "yoga_strap": 0.15, "water_bottle": 0.12, "exercise_ball": 1.10, "cardio_ball": 1.00,
    "jump_rope": 0.25, "band_kit": 0.60, "resistance_band": 0.15, "pushup_grips": 0.35,
    "yoga_block": 0.20, "foam_roller": 0.45,
}

# --- altered trader photos ----------------------------------------------------------------------
ALTERATIONS = ("crop", "recompress", "watermark", "caption")
CROP_SHARE = (0.05, 0.20)  # share of width and of height cut away
LOW_JPEG_QUALITY = (35, 60)
JPEG_QUALITY = 75  # every other altered copy
ALTERED_MAX_SIDE = 640
WATERMARK_OPACITY = (0.30, 0.50)
WATERMARK_COLOURS = ((128, 128, 128), (200, 40, 40), (40, 40, 40), (30, 90, 200))
CAPTION_BAR_SHARE = (0.09, 0.13)  # bar height / image height
CAPTION_COLOURS = ((200, 20, 30), (20, 20, 20), (240, 120, 0), (0, 110, 60))
CAPTIONS = ("HOT SALE / factory direct", "FACTORY DIRECT", "Free sample / Low MOQ",
            "In stock - fast shipping", "NEW ARRIVAL", "OEM / ODM welcome",
            "Wholesale price", "Dropshipping OK")

# --- suppliers ----------------------------------------------------------------------------------
# Factories: (city, province, name prefix, product lines made, how many).
FACTORY_PLAN = (
    ("Guangzhou", "Guangdong", "Guangzhou", ("apparel",), 6),
    ("Humen", "Guangdong", "Dongguan Humen", ("apparel",), 5),
    ("Hangzhou", "Zhejiang", "Hangzhou", ("apparel",), 5),
    ("Baigou", "Hebei", "Baigou", ("bags",), 2),
    ("Guangzhou", "Guangdong", "Guangzhou", ("bags",), 2),
    ("Shenzhen", "Guangdong", "Shenzhen", ("watches",), 2),
    ("Shenzhen", "Guangdong", "Shenzhen", ("robot", "grooming"), 2),
    ("Nantong", "Jiangsu", "Nantong", ("fitness",), 2),
    ("Ningbo", "Zhejiang", "Ningbo", ("fitness",), 1),
    ("Ningbo", "Zhejiang", "Ningbo", ("kitchen", "floor"), 1),
    ("Ningbo", "Zhejiang", "Ningbo", ("hair", "grooming", "floor"), 1),
    ("Cixi", "Zhejiang", "Cixi", ("air",), 1),
    ("Cixi", "Zhejiang", "Cixi", ("kitchen", "air"), 1),
    ("Cixi", "Zhejiang", "Cixi", ("hair",), 1),
    ("Foshan", "Guangdong", "Foshan Shunde", ("kitchen",), 2),
    ("Zhongshan", "Guangdong", "Zhongshan", ("garment", "kitchen"), 1),
    ("Zhongshan", "Guangdong", "Zhongshan", ("garment",), 1),
)
# Trading companies: (city, province, name prefix, sectors dealt in), one row each.
_ALL_SECTORS = ("apparel", "bags", "watches", "fitness", "appliances")
TRADER_PLAN = (
    ("Yiwu", "Zhejiang", "Yiwu", ("apparel", "bags")),
    ("Yiwu", "Zhejiang", "Yiwu", ("fitness", "bags", "watches")),
    ("Yiwu", "Zhejiang", "Yiwu", ("apparel",)),
    ("Yiwu", "Zhejiang", "Yiwu", ("fitness", "appliances")),
    ("Yiwu", "Zhejiang", "Yiwu", ("bags", "watches", "fitness")),
    ("Yiwu", "Zhejiang", "Yiwu", ("apparel", "fitness")),
    ("Yiwu", "Zhejiang", "Yiwu", ("appliances", "watches")),
    ("Yiwu", "Zhejiang", "Yiwu", ("apparel", "bags")),
    ("Yiwu", "Zhejiang", "Yiwu", _ALL_SECTORS),
    ("Guangzhou", "Guangdong", "Guangzhou", ("apparel",)),
    ("Guangzhou", "Guangdong", "Guangzhou", ("apparel", "bags")),
    ("Guangzhou", "Guangdong", "Guangzhou", ("appliances",)),
    ("Guangzhou", "Guangdong", "Guangzhou", ("apparel",)),
    ("Guangzhou", "Guangdong", "Guangzhou", ("bags", "watches")),
    ("Guangzhou", "Guangdong", "Guangzhou", ("appliances", "fitness")),
    ("Guangzhou", "Guangdong", "Guangzhou", ("apparel", "bags")),
    ("Guangzhou", "Guangdong", "Guangzhou", _ALL_SECTORS),
    ("Shenzhen", "Guangdong", "Shenzhen", ("appliances", "watches")),
    ("Shenzhen", "Guangdong", "Shenzhen", ("appliances",)),
    ("Shenzhen", "Guangdong", "Shenzhen", ("watches", "fitness")),
    ("Shenzhen", "Guangdong", "Shenzhen", ("appliances",)),
    ("Shenzhen", "Guangdong", "Shenzhen", ("appliances", "watches")),
    ("Shenzhen", "Guangdong", "Shenzhen", ("apparel", "appliances")),
    ("Shenzhen", "Guangdong", "Shenzhen", _ALL_SECTORS),
)
# Product line -> sector (sectors drive MOQ, lead time and which traders deal in a product).
SECTOR_OF_LINE = {"apparel": "apparel", "bags": "bags", "watches": "watches",
                  "fitness": "fitness", "kitchen": "appliances", "air": "appliances",
                  "floor": "appliances", "robot": "appliances", "garment": "appliances",
                  "hair": "appliances", "grooming": "appliances"}
# Industry words in company names, by the first line a factory makes or the trader's city.
FACTORY_INDUSTRY = {
    "apparel": ("Garment", "Clothing", "Apparel", "Knitting", "Sportswear"),
    "bags": ("Bags", "Luggage & Bags", "Handbag"),
    "watches": ("Watch", "Watches & Clocks"),
    "robot": ("Electronic Technology", "Intelligent Technology", "Smart Technology"),
    "fitness": ("Sporting Goods", "Fitness Equipment", "Sports Products"),
    "kitchen": ("Electric Appliance", "Electrical Appliances", "Household Appliances"),
    "air": ("Electric Appliance", "Environmental Technology"),
    "hair": ("Electric Appliance", "Electrical Appliances"),
    "garment": ("Electric Appliance", "Household Electrical Appliances"),
}
TRADER_INDUSTRY = {
    "Yiwu": ("Import & Export", "Trading", "E-Commerce", "Commodity Trading"),
    "Guangzhou": ("Trading", "Import and Export", "International Trade"),
    "Shenzhen": ("Supply Chain", "Trading", "Cross-border E-commerce"),
}
BRANDS = (
    "Anda", "Baolong", "Boyu", "Changjiang", "Dingsheng", "Dongfang", "Fuda", "Guoxin", "Haitian",
    "Hengda", "Hengxin", "Hongfa", "Hongxing", "Huamei", "Huaxin", "Huilong", "Jiahe", "Jiali",
    "Jinhui", "Jinyuan", "Kaida", "Kangli", "Lianfa", "Lihua", "Longsheng", "Meida", "Minghui",
    "Mingyang", "Qiaosheng", "Ruifeng", "Ruixiang", "Rongsheng", "Sanhe", "Shengtai", "Shunfa",
    "Taihe", "Tengfei", "Tianyi", "Wanjia", "Weikang", "Xiangyu", "Xinda", "Xinhe", "Xinyuan",
    "Yida", "Yongfeng", "Yongsheng", "Yuanda", "Zhenghe", "Zhongxin", "Haoyu", "Jiecheng",
    "Kairui", "Lingtong", "Meixin", "Pengda", "Qunli", "Shangpin", "Tongda", "Weiye", "Xinlong",
    "Yaxing", "Zhuoyue", "Aoxiang", "Chuangxin", "Fengyuan",
)
MARKETS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "PL", "SE", "CA", "AU", "JP", "KR", "AE",
           "SA", "BR", "MX", "CL", "ZA", "MY", "SG", "TH", "VN", "TR")
EXTRA_LANGUAGES = ("Spanish", "Russian", "French", "Arabic", "Portuguese", "Japanese")
# Ranges per supplier kind: (low, high) drawn uniformly; rates rounded to 3 decimals.
SUPPLIER_PROFILES: dict[str, dict[str, tuple[float, float]]] = {
    "factory": {
        "years_in_business": (6, 26), "staff": (80, 1200), "response_rate": (0.78, 0.95),
        "response_hours": (4, 24), "on_time_rate": (0.92, 0.995), "repurchase_rate": (0.12, 0.35),
        "dispatch_48h_rate": (0.25, 0.65), "export_markets": (3, 7), "extra_languages": (0, 1),
    },
    "trading_company": {
        "years_in_business": (2, 12), "staff": (6, 60), "response_rate": (0.92, 0.995),
        "response_hours": (1, 6), "on_time_rate": (0.85, 0.96), "repurchase_rate": (0.20, 0.45),
        "dispatch_48h_rate": (0.70, 0.95), "export_markets": (8, 14), "extra_languages": (1, 3),
    },
}
# Capabilities: always held, and held with a probability.
CAPABILITY_ODDS = {
    "factory": {"oem": 1.0, "custom_logo": 1.0, "samples": 1.0, "odm": 0.7, "small_batch": 0.25},
    "trading_company": {"small_batch": 1.0, "dropship": 0.9, "samples": 1.0, "custom_logo": 0.5,
                        "oem": 0.2},
}
# Certificates a factory holds, with the probability of each, by the first line it makes.
_APPLIANCE_CERTS = {"CE": 1.0, "RoHS": 0.95, "ISO9001": 0.8, "CB": 0.5, "GS": 0.4, "ETL": 0.35,
                    "UL": 0.2}
CERTIFICATE_ODDS = {
    "apparel": {"BSCI": 0.8, "OEKO-TEX": 0.7, "ISO9001": 0.6, "WRAP": 0.3, "GOTS": 0.15},
    "bags": {"BSCI": 0.85, "ISO9001": 0.7},
    "watches": {"CE": 0.9, "RoHS": 0.9, "ISO9001": 0.7},
    "robot": {"CE": 1.0, "RoHS": 0.95, "FCC": 0.8, "ISO9001": 0.7, "CB": 0.4, "UL": 0.2},
    "fitness": {"ISO9001": 0.7, "BSCI": 0.6, "ISO14001": 0.2},
    "kitchen": _APPLIANCE_CERTS,
    "air": {**_APPLIANCE_CERTS, "FCC": 0.5},
    "hair": _APPLIANCE_CERTS,
    "garment": _APPLIANCE_CERTS,
}
TRADER_CERTIFICATE_ODDS = {"ISO9001": 0.2, "BSCI": 0.1}
MISSING_RESPONSE_HOURS = 4  # suppliers whose response_hours is left empty on purpose
MISSING_STAFF = 4  # suppliers whose staff count is left empty on purpose

# --- product kinds ------------------------------------------------------------------------------
# Appliance category leaf -> (kind, product line).
APPLIANCE_KINDS = {
    "Coffee Machines": ("coffee_machine", "kitchen"), "Air Fryers": ("air_fryer", "kitchen"),
    "Blenders": ("blender", "kitchen"), "Food Processors": ("food_processor", "kitchen"),
    "Kettles": ("kettle", "kitchen"), "Toasters": ("toaster", "kitchen"),
    "Air Purifiers": ("air_purifier", "air"), "Fans": ("fan", "air"),
    "Humidifiers": ("humidifier", "air"), "Cordless Vacuums": ("stick_vacuum", "floor"),
    "Upright Vacuums": ("upright_vacuum", "floor"), "Robot Vacuums": ("robot_vacuum", "robot"),
    "Handheld Steamers": ("garment_steamer", "garment"), "Irons": ("steam_iron", "garment"),
    "Steam Generators": ("steam_generator", "garment"),
    "Electric Shavers": ("shaver", "grooming"), "Trimmers": ("trimmer", "grooming"),
    "Hair Dryers": ("hair_dryer", "hair"), "Hair Straighteners": ("hair_straightener", "hair"),
}
# Luma apparel category leaf -> kind ("Bras & Tanks" is split by name below).
APPAREL_KINDS = {"Hoodies & Sweatshirts": "hoodie", "Jackets": "jacket", "Tees": "tee",
                 "Tanks": "tank", "Pants": "pants", "Shorts": "shorts"}
# Luma gear: (category word, name keyword, kind), first match wins.
GEAR_KINDS = (
    ("Bags", "Backpack", "backpack"), ("Bags", "Duffle", "duffle"),
    ("Bags", "Messenger", "messenger"), ("Bags", "Tote", "tote"), ("Bags", "", "bag"),
    ("Watches", "Digital", "watch_digital"), ("Watches", "Analog", "watch_analog"),
    ("Watches", "", "watch_sport"),
    ("Fitness", "Strap", "yoga_strap"), ("Fitness", "Bottle", "water_bottle"),
    ("Fitness", "Stasis Ball", "exercise_ball"), ("Fitness", "Ball", "cardio_ball"),
    ("Fitness", "Jump Rope", "jump_rope"), ("Fitness", "Band Kit", "band_kit"),
    ("Fitness", "Band", "resistance_band"), ("Fitness", "Grips", "pushup_grips"),
    ("Fitness", "Brick", "yoga_block"), ("Fitness", "Roller", "foam_roller"),
)
GEAR_LINES = {"Bags": "bags", "Watches": "watches", "Fitness": "fitness"}

# HS 2022 subheadings by product kind. A dict value is keyed by the chief fibre (the first
# generic fibre in the material list; trademarked fabrics are skipped): "wool", "cotton",
# "synthetic" (polyester, nylon, elastane, fleece...), "artificial" (rayon, lyocell), "*" = other.
# A "kind/Gender" key applies where men's and women's garments fall under different headings.
HS_CODES: dict[str, str | dict[str, str]] = {
    # hoodies and sweatshirts: knitted jerseys and pullovers, heading 6110
    "hoodie": {"wool": "611011", "cotton": "611020", "synthetic": "611030",
               "artificial": "611030", "*": "611090"},
    # T-shirts, singlets, tank tops and other vests, knitted: 6109
    "tee": {"cotton": "610910", "*": "610990"},
    "tank": {"cotton": "610910", "*": "610990"},
    # brassieres and sports bras, knitted or not: 6212.10
    "bra": "621210",
    # training jackets and shells, woven anoraks / wind-jackets: 6201 (men), 6202 (women); in
    # HS 2022 the former 6201.93 / 6202.93 (man-made fibres) became 6201.40 / 6202.40
    "jacket/Men": {"wool": "620120", "cotton": "620130", "synthetic": "620140",
                   "artificial": "620140", "*": "620190"},
    "jacket/Women": {"wool": "620220", "cotton": "620230", "synthetic": "620240",
                     "artificial": "620240", "*": "620290"},
    # men's warm-up pants and training shorts, woven trousers and shorts: 6203.4x
    "pants/Men": {"wool": "620341", "cotton": "620342", "synthetic": "620343", "*": "620349"},
    "shorts/Men": {"wool": "620341", "cotton": "620342", "synthetic": "620343", "*": "620349"},
    # women's yoga pants, leggings and shorts, knitted trousers and shorts: 6104.6x
    "pants/Women": {"wool": "610461", "cotton": "610462", "synthetic": "610463", "*": "610469"},
    "shorts/Women": {"wool": "610461", "cotton": "610462", "synthetic": "610463", "*": "610469"},
    # backpacks, duffles, messenger bags with outer surface of textile: 4202.92; totes and
    # shoulder bags are handbags: 4202.22
    "backpack": "420292", "duffle": "420292", "messenger": "420292", "bag": "420292",
    "tote": "420222",
    # battery wrist-watches: analog hands only 9102.11, digital display only 9102.12, sports
    # watches combining both (or other displays) 9102.19
    "watch_analog": "910211", "watch_digital": "910212", "watch_sport": "910219",
    # gymnastics and exercise equipment (straps, balls, bands, ropes, blocks, rollers): 9506.91;
    # a plastic drinking bottle is plastic kitchenware: 3924.10
    "yoga_strap": "950691", "exercise_ball": "950691", "cardio_ball": "950691",
    "jump_rope": "950691", "band_kit": "950691", "resistance_band": "950691",
    "pushup_grips": "950691", "yoga_block": "950691", "foam_roller": "950691",
    "water_bottle": "392410",
    # domestic electro-thermic appliances, heading 8516
    "coffee_machine": "851671",  # coffee or tea makers
    "toaster": "851672",  # toasters
    "air_fryer": "851660",  # ovens, cookers, roasters
    "kettle": "851679",  # other electro-thermic appliances
    "garment_steamer": "851679",  # other electro-thermic appliances
    "steam_iron": "851640",  # electric smoothing irons
    "steam_generator": "851640",  # smoothing irons (iron with a steam station)
    "hair_dryer": "851631",  # hair dryers
    "hair_straightener": "851632",  # other hair-dressing apparatus
    # domestic electro-mechanical appliances with self-contained motor, heading 8509
    "blender": "850940",  # food grinders and mixers
    "food_processor": "850940",
    "humidifier": "850980",  # other domestic appliances
    # vacuum cleaners <= 1500 W with a receptacle <= 20 l, including robot cleaners: 8508.11
    "stick_vacuum": "850811", "upright_vacuum": "850811", "robot_vacuum": "850811",
    "air_purifier": "842139",  # machinery for filtering or purifying gases
    "fan": "841451",  # table, floor, wall fans, motor <= 125 W
    "shaver": "851010",  # shavers
    "trimmer": "851020",  # hair clippers
}
FIBRE_GROUPS = {
    "wool": "wool", "cotton": "cotton", "organic cotton": "cotton", "polyester": "synthetic",
    "nylon": "synthetic", "spandex": "synthetic", "lycra": "synthetic", "fleece": "synthetic",
    "mesh": "synthetic", "microfiber": "synthetic", "rayon": "artificial", "tencel": "artificial",
    "hemp": "other", "linen": "other",
}

# Alibaba-style title words per kind; {g} is "Men's" or "Women's".
TITLE_WORDS = {
    "hoodie": "{g} Pullover Hoodie Sweatshirt", "jacket": "{g} Sports Jacket Windproof Outdoor",
    "tee": "{g} Quick Dry Sports T-Shirt Gym Tee", "tank": "{g} Fitness Tank Top Sleeveless",
    "bra": "Women's Sports Bra Yoga Top", "pants": "{g} Training Pants Jogger Yoga Pants",
    "shorts": "{g} Running Shorts Gym Training Shorts",
    "backpack": "Laptop Backpack Travel School Bag", "duffle": "Gym Duffle Bag Sports Travel Bag",
    "messenger": "Messenger Bag Crossbody Shoulder Bag", "tote": "Tote Bag Shoulder Handbag",
    "bag": "Sports Shoulder Bag Yoga Bag", "watch_analog": "Quartz Analog Wrist Watch",
    "watch_digital": "Digital Sports Watch LED Waterproof", "watch_sport": "Sports Wrist Watch",
    "yoga_strap": "Cotton Yoga Strap Stretching Belt", "water_bottle": "Sports Water Bottle BPA Free",
    "exercise_ball": "Anti-Burst Yoga Ball Exercise Ball", "cardio_ball": "Medicine Ball Cardio Ball",
    "jump_rope": "Skipping Rope Speed Jump Rope", "band_kit": "Resistance Bands Set",
    "resistance_band": "Resistance Band Fitness Elastic Band", "pushup_grips": "Push Up Bars Grips",
    "yoga_block": "EVA Foam Yoga Block Brick", "foam_roller": "Foam Roller Muscle Massage",
    "coffee_machine": "Coffee Maker Espresso Machine", "air_fryer": "Oil Free Air Fryer Oven",
    "blender": "Electric Blender Juicer Mixer", "food_processor": "Food Processor Chopper",
    "kettle": "Electric Water Kettle", "toaster": "Bread Toaster",
    "air_purifier": "HEPA Air Purifier Home", "fan": "Electric Fan Home Cooling",
    "humidifier": "Cool Mist Ultrasonic Humidifier", "stick_vacuum": "Cordless Vacuum Cleaner",
    "upright_vacuum": "Bagless Upright Vacuum Cleaner", "robot_vacuum": "Robot Vacuum Cleaner",
    "garment_steamer": "Garment Steamer Clothes Steamer", "steam_iron": "Electric Steam Iron",
    "steam_generator": "Steam Station Iron", "shaver": "Electric Rotary Shaver Razor",
    "trimmer": "Beard Trimmer Hair Clipper", "hair_dryer": "Hair Dryer Blow Dryer",
    "hair_straightener": "Hair Straightener Flat Iron",
}
FACTORY_TITLE_SUFFIXES = ("Custom Logo OEM Factory", "OEM ODM Manufacturer",
                          "Factory Wholesale Custom Logo")
TRADER_TITLE_PREFIXES = ("Hot Sale", "2024 New", "Best Selling", "Wholesale")
TRADER_TITLE_SUFFIXES = ("Fast Shipping In Stock", "Dropshipping Low MOQ", "Factory Direct Price",
                         "Free Sample")
LETTER_SIZES = ("XS", "S", "M", "L", "XL", "XXL")
SIZE_RUN = 5  # sizes offered from the smallest one the source lists
APPLIANCE_ATTRIBUTES = ("wattage", "voltage", "capacity", "connectivity")

SUPPLIER_COLUMNS = (
    "supplier_id", "name", "kind", "country", "province", "city", "years_in_business", "staff",
    "certifications", "capabilities", "response_rate", "response_hours", "on_time_rate",
    "repurchase_rate", "dispatch_48h_rate", "export_markets", "languages",
)
LISTING_COLUMNS = (
    "listing_id", "supplier_id", "title", "images", "product_id", "category", "hs_code",
    "material", "price_min", "price_max", "currency", "moq", "lead_time_days", "weight_kg",
    "attributes",
)


@dataclass(frozen=True)
class Photo:
    """One source photo: its file, colour (may be empty) and view (``main``, ``back``...)."""

    path: Path
    color: str
    view: str

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Product:
    """One source product with the facts the generator needs."""

    product_id: str
    catalog: str
    name: str
    category: str
    price_usd: float
    materials: tuple[str, ...]
    colors: tuple[str, ...]
    size: str
    facts: dict[str, str]
    photos: list[Photo]
    kind: str = ""
    line: str = ""
    gender: str = ""
    reserved: list[Photo] = field(default_factory=list)

    @property
    def sector(self) -> str:
        return SECTOR_OF_LINE[self.line]

    @property
    def listed_photos(self) -> list[Photo]:
        return [photo for photo in self.photos if photo not in self.reserved]


@dataclass
class SupplierPlan:
    supplier_id: str
    name: str
    short_name: str
    kind: str
    city: str
    province: str
    lines: tuple[str, ...] = ()  # factories: product lines made
    sectors: tuple[str, ...] = ()  # traders: sectors dealt in
    row: dict[str, str] = field(default_factory=dict)


def _rng(seed: int, *parts: str) -> random.Random:
    """A generator for one decision; string seeding is stable across runs and platforms."""
    return random.Random("|".join([str(seed), *parts]))


def _clean(text: str) -> str:
    """Drop HTML entities and trademark signs from a source name or material."""
    text = html.unescape(text).replace("\u2122", "").replace("\u00ae", "")
    return re.sub(r"\s+", " ", text).strip()


def _split(text: str) -> tuple[str, ...]:
    return tuple(part for part in (_clean(p) for p in re.split(r"[|\n]", text)) if part)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def load_products(sources_dir: Path, skipped: list[str] | None = None) -> list[Product]:
    """The source products that have photos, in catalog and file order.

    Products without any photo cannot be listed or searched for; their ids go to ``skipped``.
    """
    products: list[Product] = []
    for catalog in SOURCE_CATALOGS:
        folder = sources_dir / catalog
        photos: dict[str, list[Photo]] = {}
        for row in _read_csv(folder / "images.csv"):
            photo = Photo(folder / row["image"], row["color"].strip(), row["view"].strip())
            photos.setdefault(row["product_id"], []).append(photo)
        for row in _read_csv(folder / "products.csv"):
            product = Product(
                product_id=row["product_id"],
                catalog=catalog,
                name=_clean(row["name"]),
                category=row["category"].strip(),
                price_usd=float(row["price_usd"]),
                materials=_split(row.get("material", "")),
                colors=_split(row.get("colors", "")),
                size=row.get("sizes", "").strip(),
                facts={key: (value or "").strip() for key, value in row.items()},
                photos=photos.get(row["product_id"], []),
            )
            if not product.photos:
                if skipped is not None:
                    skipped.append(product.product_id)
                continue
            _classify(product)
            products.append(product)
    return products


def _classify(product: Product) -> None:
    """Set kind, product line and gender from the source category and name."""
    if product.catalog == "appliances":
        leaf = product.category.split("->")[-1].strip()
        product.kind, product.line = APPLIANCE_KINDS[leaf]
        return
    parts = product.category.split("/")
    if parts[0] in ("Men", "Women"):
        product.gender, product.line = parts[0], "apparel"
        if parts[2] == "Bras & Tanks":
            product.kind = "bra" if re.search(r"\bBra\b", product.name) else "tank"
        else:
            product.kind = APPAREL_KINDS[parts[2]]
        return
    for word, keyword, kind in GEAR_KINDS:
        if parts[1].startswith(word) and keyword in product.name:
            product.kind, product.line = kind, GEAR_LINES[word]
            return
    raise ValueError(f"no product kind for {product.product_id} ({product.category})")


def chief_fibre(materials: Sequence[str]) -> str:
    """The fibre group of the first generic fibre listed ("other" if none is known)."""
    for material in materials:
        group = FIBRE_GROUPS.get(material.lower())
        if group:
            return group
    return "other"


def hs_code(product: Product) -> str:
    """The 6-digit HS code from ``HS_CODES`` for a product."""
    rule = HS_CODES.get(product.kind) or HS_CODES[f"{product.kind}/{product.gender}"]
    if isinstance(rule, str):
        return rule
    fibre = chief_fibre(product.materials)
    return rule.get(fibre, rule["*"])


def choose_reserved(product: Product, seed: int) -> list[Photo]:
    """The photo kept out of every listing, or none for products with few photos."""
    photos = product.photos
    if len(photos) < RESERVE_MIN_PHOTOS:
        return []
    colours = [photo.color for photo in photos]
    shared = [p for p in photos if p.color and colours.count(p.color) > 1]
    if shared:
        def rank(photo: Photo) -> tuple[int, int]:
            order = (RESERVE_VIEW_ORDER.index(photo.view) if photo.view in RESERVE_VIEW_ORDER
                     else len(RESERVE_VIEW_ORDER) + (photo.view == "main"))
            return order, photos.index(photo)
        return [min(shared, key=rank)]
    return [_rng(seed, "reserve", product.product_id).choice(photos[1:])]


def _plan_suppliers(seed: int) -> list[SupplierPlan]:
    rng = _rng(seed, "suppliers")
    brands = rng.sample(BRANDS, len(BRANDS))
    plans: list[SupplierPlan] = []
    for city, province, prefix, lines, count in FACTORY_PLAN:
        for _ in range(count):
            brand = brands.pop()
            industry = rng.choice(FACTORY_INDUSTRY[lines[0]])
            plans.append(SupplierPlan("", f"{prefix} {brand} {industry} Co., Ltd.", brand,
                                      "factory", city, province, lines=lines))
    for city, province, prefix, sectors in TRADER_PLAN:
        brand = brands.pop()
        industry = rng.choice(TRADER_INDUSTRY[city])
        plans.append(SupplierPlan("", f"{prefix} {brand} {industry} Co., Ltd.", brand,
                                  "trading_company", city, province, sectors=sectors))
    rng.shuffle(plans)
    for number, plan in enumerate(plans, start=1):
        plan.supplier_id = f"S{number:03d}"
    missing_hours = set(rng.sample(range(len(plans)), MISSING_RESPONSE_HOURS))
    missing_staff = set(rng.sample(range(len(plans)), MISSING_STAFF))
    for index, plan in enumerate(plans):
        plan.row = _supplier_row(plan, _rng(seed, "supplier", plan.supplier_id))
        if index in missing_hours:
            plan.row["response_hours"] = ""
        if index in missing_staff:
            plan.row["staff"] = ""
    return plans


def _supplier_row(plan: SupplierPlan, rng: random.Random) -> dict[str, str]:
    profile = SUPPLIER_PROFILES[plan.kind]

    def whole(key: str) -> int:
        low, high = profile[key]
        return rng.randint(int(low), int(high))

    def rate(key: str) -> str:
        return f"{rng.uniform(*profile[key]):.3f}"

    if plan.kind == "factory":
        cert_odds = CERTIFICATE_ODDS[plan.lines[0]]
        if any(line in ("air", "robot") for line in plan.lines):
            cert_odds = {**cert_odds, "FCC": max(cert_odds.get("FCC", 0.0), 0.5)}
    else:
        cert_odds = TRADER_CERTIFICATE_ODDS
    certificates = [code for code, odds in cert_odds.items() if rng.random() < odds]
    if plan.kind == "factory" and not certificates:
        certificates = [next(iter(cert_odds))]
    capabilities = [code for code, odds in CAPABILITY_ODDS[plan.kind].items()
                    if rng.random() < odds]
    markets = ["US", *rng.sample(MARKETS[1:], whole("export_markets") - 1)]
    languages = ["English", "Chinese",
                 *rng.sample(EXTRA_LANGUAGES, whole("extra_languages"))]
    staff = whole("staff")
    return {
        "supplier_id": plan.supplier_id,
        "name": plan.name,
        "kind": plan.kind,
        "country": "CN",
        "province": plan.province,
        "city": plan.city,
        "years_in_business": str(whole("years_in_business")),
        "staff": str(staff if staff < 100 else round(staff, -1)),
        "certifications": "|".join(sorted(certificates)),
        "capabilities": "|".join(sorted(capabilities)),
        "response_rate": rate("response_rate"),
        "response_hours": str(whole("response_hours")),
        "on_time_rate": rate("on_time_rate"),
        "repurchase_rate": rate("repurchase_rate"),
        "dispatch_48h_rate": rate("dispatch_48h_rate"),
        "export_markets": "|".join(sorted(markets)),
        "languages": "|".join(languages),
    }


def _assign_factories(products: list[Product], plans: list[SupplierPlan],
                      seed: int) -> dict[str, SupplierPlan]:
    """The source factory of each product: balanced over the factories making its line."""
    factories = [plan for plan in plans if plan.kind == "factory"]
    load = {plan.supplier_id: 0 for plan in factories}
    order = sorted(products, key=lambda p: p.product_id)
    _rng(seed, "factories").shuffle(order)
    chosen: dict[str, SupplierPlan] = {}
    for product in order:
        candidates = [plan for plan in factories if product.line in plan.lines]
        best = min(candidates, key=lambda plan: (load[plan.supplier_id], plan.supplier_id))
        load[best.supplier_id] += 1
        chosen[product.product_id] = best
    return chosen


def _size_run(product: Product) -> list[str]:
    if not product.size:
        return []
    if product.size in LETTER_SIZES:
        start = LETTER_SIZES.index(product.size)
        return list(LETTER_SIZES[start:start + SIZE_RUN])
    if product.size.isdigit():
        return [str(int(product.size) + step) for step in range(SIZE_RUN)]
    return [product.size]


def _weight_kg(product: Product, seed: int) -> float | None:
    if product.catalog == "appliances":
        pounds = product.facts.get("weight_lb", "")
        return round(float(pounds) * LB_TO_KG, 2) if pounds else None
    jitter = _rng(seed, "weight", product.product_id).uniform(-WEIGHT_JITTER, WEIGHT_JITTER)
    return round(WEIGHT_KG[product.kind] * (1 + jitter), 3)


def _title(product: Product, supplier: SupplierPlan, rng: random.Random) -> str:
    words = TITLE_WORDS[product.kind].format(g=f"{product.gender}'s")
    specs = ""
    if product.catalog == "appliances":
        specs = " ".join(product.facts[key] for key in ("wattage", "voltage", "capacity")
                         if product.facts.get(key))
    elif product.line == "apparel":  # the chief fibre, as a buyer would search for it
        specs = next((m for m in product.materials if m.lower() in FIBRE_GROUPS), "")
    if supplier.kind == "factory":
        parts = [product.name, words, specs, rng.choice(FACTORY_TITLE_SUFFIXES)]
    else:
        parts = [rng.choice(TRADER_TITLE_PREFIXES), words, product.name, specs,
                 rng.choice(TRADER_TITLE_SUFFIXES)]
    return " ".join(part for part in parts if part)


def _price_tiers(base: float, moq: int) -> list[dict[str, Any]]:
    return [{"min_qty": moq * multiplier, "unit_price": round(base * factor, 2)}
            for multiplier, factor in zip(TIER_QUANTITY_MULTIPLIERS, TIER_PRICE_FACTORS)]


def _attributes(product: Product, tiers: list[dict[str, Any]],
                photos: Sequence[Photo], supplier: SupplierPlan) -> dict[str, Any]:
    colours = list(product.colors)
    if supplier.kind == "trading_company":  # a trader offers the colours it shows
        shown = [photo.color for photo in photos if photo.color]
        colours = [c for c in colours if c in shown] or sorted(set(shown)) or colours
    attributes: dict[str, Any] = {"price_tiers": tiers, "colors": colours}
    if product.catalog == "appliances":
        for key in APPLIANCE_ATTRIBUTES:
            if product.facts.get(key):
                attributes[key] = product.facts[key]
    if product.line == "apparel":
        attributes["sizes"] = _size_run(product)
        attributes["fibre"] = list(product.materials)
    return attributes


# --- images -------------------------------------------------------------------------------------

@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _fit_font(text: str, size: int,
              max_width: float) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's default font at the largest size up to ``size`` that fits ``max_width``."""
    while size > 10 and _font(size).getlength(text) > max_width:
        size -= 2
    return _font(size)


def _crop(image: Image.Image, rng: random.Random) -> Image.Image:
    width, height = image.size
    share = rng.uniform(*CROP_SHARE)
    cut_x, cut_y = round(width * share), round(height * share)
    left, top = rng.randint(0, cut_x), rng.randint(0, cut_y)
    return image.crop((left, top, left + width - cut_x, top + height - cut_y))


def _watermark(image: Image.Image, rng: random.Random, text: str) -> Image.Image:
    width, height = image.size
    font = _fit_font(text, max(12, width // 7), width * 0.8)
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = rng.randint(0, max(0, width - (right - left)))
    y = rng.randint(height // 4, max(height // 4, 3 * height // 4 - (bottom - top)))
    alpha = round(255 * rng.uniform(*WATERMARK_OPACITY))
    draw.text((x - left, y - top), text, font=font, fill=(*rng.choice(WATERMARK_COLOURS), alpha))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def _caption(image: Image.Image, rng: random.Random) -> Image.Image:
    width, height = image.size
    bar = max(18, round(height * rng.uniform(*CAPTION_BAR_SHARE)))
    top = 0 if rng.random() < 0.5 else height - bar
    text = rng.choice(CAPTIONS)
    font = _fit_font(text, round(bar * 0.6), width * 0.92)
    out = image.copy()
    draw = ImageDraw.Draw(out)
    draw.rectangle((0, top, width, top + bar), fill=rng.choice(CAPTION_COLOURS))
    left, upper, right, lower = draw.textbbox((0, 0), text, font=font)
    draw.text(((width - (right - left)) / 2 - left, top + (bar - (lower - upper)) / 2 - upper),
              text, font=font, fill=(255, 255, 255))
    return out


def alter_photo(source: Path, target: Path, rng: random.Random, short_name: str) -> str:
    """Write an altered JPEG copy of ``source`` to ``target``; return what was done."""
    with Image.open(source) as opened:
        image = opened.convert("RGB")
    image.thumbnail((ALTERED_MAX_SIDE, ALTERED_MAX_SIDE), Image.Resampling.LANCZOS)
    alteration = rng.choice(ALTERATIONS)
    quality = JPEG_QUALITY
    if alteration == "crop":
        image = _crop(image, rng)
    elif alteration == "recompress":
        quality = rng.randint(*LOW_JPEG_QUALITY)
    elif alteration == "watermark":
        image = _watermark(image, rng, short_name.upper())
    else:
        image = _caption(image, rng)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=False, progressive=False,
               subsampling=2)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(buffer.getvalue())
    return alteration


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())


# --- writing ------------------------------------------------------------------------------------

def _write_csv(path: Path, columns: Sequence[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(column, "") for column in columns])


def _money(value: float) -> str:
    return f"{value:.2f}"


def _offer(product: Product, seller: SupplierPlan, base: float, code: str, weight: float | None,
           out_dir: Path, seed: int) -> dict[str, str]:
    """One listing row of ``product`` by ``seller`` (without its id); writes its photos."""
    srng = _rng(seed, "listing", product.product_id, seller.supplier_id)
    available = product.listed_photos
    if seller.kind == "factory":
        photos = available
        for photo in photos:
            _copy(photo.path, out_dir / "images" / seller.supplier_id / photo.name)
        price = base
        low, high = FACTORY_MOQ[product.sector]
        moq = srng.randint(low // FACTORY_MOQ_STEP, high // FACTORY_MOQ_STEP)
        moq *= FACTORY_MOQ_STEP
        lead = srng.randint(*FACTORY_LEAD_DAYS[product.sector])
    else:
        shown = srng.randint(1, min(TRADER_PHOTOS_MAX, len(available)))
        picks = sorted(srng.sample(range(len(available)), shown))
        photos = [available[index] for index in picks]
        for photo in photos:
            alter_photo(photo.path, out_dir / "images" / seller.supplier_id / photo.name,
                        srng, seller.short_name)
        price = base * srng.uniform(*TRADER_MARKUP)
        moq = srng.randint(*TRADER_MOQ[product.sector])
        lead = srng.randint(*TRADER_LEAD_DAYS)
    tiers = _price_tiers(price, moq)
    attributes = _attributes(product, tiers, photos, seller)
    return {
        "supplier_id": seller.supplier_id,
        "title": _title(product, seller, srng),
        "images": "|".join(f"images/{seller.supplier_id}/{p.name}" for p in photos),
        "product_id": product.product_id,
        "category": product.category,
        "hs_code": code,
        "material": ", ".join(product.materials),
        "price_min": _money(tiers[-1]["unit_price"]),
        "price_max": _money(tiers[0]["unit_price"]),
        "currency": CURRENCY,
        "moq": str(moq),
        "lead_time_days": str(lead),
        "weight_kg": "" if weight is None else f"{weight:g}",
        "attributes": json.dumps(attributes, ensure_ascii=False, separators=(",", ":")),
    }


def _subset(products: list[Product], limit: int | None) -> list[Product]:
    """At most ``limit`` products of each source catalog, evenly spread over its file order."""
    if limit is None:
        return products
    chosen: list[Product] = []
    for catalog in SOURCE_CATALOGS:
        own = [p for p in products if p.catalog == catalog]
        if limit >= len(own):
            chosen += own
            continue
        chosen += [own[(index * len(own)) // limit] for index in range(limit)]
    return chosen


def _clear(out_dir: Path) -> None:
    """Remove what a previous run wrote (and nothing else)."""
    for folder in ("images", "queries"):
        if (out_dir / folder).is_dir():
            shutil.rmtree(out_dir / folder)
    for name in ("suppliers.csv", "listings.csv", "ground_truth.json", "README.md"):
        (out_dir / name).unlink(missing_ok=True)


def generate(out_dir: Path, seed: int = DEFAULT_SEED, sources_dir: Path = DEFAULT_SOURCES, *,
             limit_products: int | None = None, eval_set: Path | None = None) -> dict[str, Any]:
    """Write the demo catalog to ``out_dir`` and return a summary of what was written.

    ``limit_products`` keeps at most that many products per source catalog (for quick checks);
    ``eval_set``, when given, is where the JSON Lines eval set of reserved photos is written.
    """
    out_dir, sources_dir = Path(out_dir), Path(sources_dir)
    skipped: list[str] = []
    products = _subset(load_products(sources_dir, skipped), limit_products)
    names = [photo.name for product in products for photo in product.photos]
    if len(names) != len(set(names)):
        raise ValueError("source photo file names are not unique across the source catalogs")
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear(out_dir)

    plans = _plan_suppliers(seed)
    factory_of = _assign_factories(products, plans, seed)
    traders = [plan for plan in plans if plan.kind == "trading_company"]

    listings: list[dict[str, str]] = []
    truth: dict[str, dict[str, Any]] = {}
    for product in products:
        product.reserved = choose_reserved(product, seed)
        for photo in product.reserved:
            _copy(photo.path, out_dir / "queries" / photo.name)
        rng = _rng(seed, "product", product.product_id)
        factory = factory_of[product.product_id]
        candidates = [plan for plan in traders if product.sector in plan.sectors]
        count = rng.randint(TRADERS_PER_PRODUCT[0], min(TRADERS_PER_PRODUCT[1], len(candidates)))
        sellers = [factory, *sorted(rng.sample(candidates, count), key=lambda p: p.supplier_id)]
        base = product.price_usd * rng.uniform(*FACTORY_PRICE_SHARE)
        code = hs_code(product)
        weight = _weight_kg(product, seed)
        listings += [_offer(product, seller, base, code, weight, out_dir, seed)
                     for seller in sellers]
        truth[product.product_id] = {
            "name": product.name,
            "source_catalog": product.catalog,
            "category": product.category,
            "hs_code": code,
            "source_supplier_id": factory.supplier_id,
            "supplier_ids": sorted(seller.supplier_id for seller in sellers),
            "listing_ids": [],
            "reserved_queries": [
                {"image": f"queries/{photo.name}", "color": photo.color, "view": photo.view,
                 "source_image": f"{product.catalog}/images/{photo.name}"}
                for photo in product.reserved
            ],
        }

    _rng(seed, "listing-ids").shuffle(listings)
    for number, row in enumerate(listings, start=1):
        row["listing_id"] = f"L{number:04d}"
        truth[row["product_id"]]["listing_ids"].append(row["listing_id"])
    for entry in truth.values():
        entry["listing_ids"].sort()
    listings.sort(key=lambda row: row["listing_id"])

    _write_csv(out_dir / "suppliers.csv", SUPPLIER_COLUMNS, [plan.row for plan in plans])
    _write_csv(out_dir / "listings.csv", LISTING_COLUMNS, listings)
    ground_truth = {"seed": seed, "generator": "data/demo/generator.py", "products": truth}
    (out_dir / "ground_truth.json").write_text(
        json.dumps(ground_truth, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        encoding="utf-8")

    cases = _eval_cases(products, truth, out_dir, eval_set)
    if eval_set is not None:
        eval_set = Path(eval_set)
        eval_set.parent.mkdir(parents=True, exist_ok=True)
        eval_set.write_text("".join(json.dumps(case, ensure_ascii=False) + "\n" for case in cases),
                            encoding="utf-8")

    factories = sum(plan.kind == "factory" for plan in plans)
    summary: dict[str, Any] = {
        "seed": seed,
        "products": len(products),
        "skipped_products": skipped,
        "suppliers": len(plans),
        "factories": factories,
        "trading_companies": len(plans) - factories,
        "listings": len(listings),
        "images": sum(1 for path in (out_dir / "images").rglob("*") if path.is_file()),
        "reserved_queries": sum(len(p.reserved) for p in products),
        "eval_cases": len(cases),
    }
    (out_dir / "README.md").write_text(_readme(summary), encoding="utf-8")
    summary["bytes"] = sum(path.stat().st_size for path in out_dir.rglob("*") if path.is_file())
    return summary


def _eval_cases(products: list[Product], truth: dict[str, dict[str, Any]], out_dir: Path,
                eval_set: Path | None) -> list[dict[str, Any]]:
    """One eval case per reserved photo, image paths relative to the eval set's folder."""
    base = Path(eval_set).parent if eval_set is not None else out_dir
    cases = []
    for product in products:
        listed_colours = {photo.color for photo in product.listed_photos}
        for photo in product.reserved:
            image = Path(os.path.relpath(out_dir / "queries" / photo.name, base)).as_posix()
            tags = ["held_out_view"]
            if photo.color and photo.color not in listed_colours:
                tags.append("unseen_colour")
            cases.append({
                "id": f"demo-{product.product_id.lower()}-{photo.view}",
                "image": image,
                "market": "US",
                "tags": tags,
                "expect": {
                    "relevant_product_ids": [product.product_id],
                    "source_supplier_id": truth[product.product_id]["source_supplier_id"],
                    "hs_heading": truth[product.product_id]["hs_code"][:4],
                },
            })
    return cases


def _readme(summary: dict[str, Any]) -> str:
    def span(pair: tuple[float, float], percent: bool = False) -> str:
        if percent:
            return f"{pair[0] * 100:.0f}-{pair[1] * 100:.0f} %"
        return f"{pair[0]:g}-{pair[1]:g}"

    moq = "; ".join(f"{sector} {span(FACTORY_MOQ[sector])} / {span(TRADER_MOQ[sector])}"
                    for sector in FACTORY_MOQ)
    lead = "; ".join(f"{sector} {span(days)}" for sector, days in FACTORY_LEAD_DAYS.items())
    skipped = ", ".join(f"`{pid}`" for pid in summary["skipped_products"]) or "none"
    return f"""# Demo supplier catalog (synthetic)

**The supplier records in this folder are synthetic.** No public source publishes real 1688 /
Alibaba supplier data, so `data/demo/generator.py` generated them, seeded and deterministic, on top
of two real product catalogs (`data/catalogs/luma`, `data/catalogs/appliances`; see
`data/SOURCES.md`). The photos and the product facts (names, categories, retail prices, materials,
colours, sizes, wattage, voltage, capacity, weight) are real. The suppliers, their names, locations,
certificates, rates, capabilities, and every price, MOQ, lead time and HS code are generated or
assigned by the generator. Use it to try the agent; bring your own supplier catalog for real work.

Regenerate (byte-identical for the same seed):

```
python -m data.demo.generator --out data/catalogs/demo --seed {summary['seed']}
```

This writes this folder and the eval set `evals/sets/demo_reserved/demo_reserved.jsonl`.

## Contents

- `suppliers.csv`: {summary['suppliers']} suppliers ({summary['factories']} factories, \
{summary['trading_companies']} trading companies), all in China, in manufacturing clusters that fit \
their goods: apparel in Guangzhou, Humen (Dongguan) and Hangzhou; bags in Baigou (Baoding, Hebei) \
and Guangzhou; watches and electronics in Shenzhen; fitness goods in Nantong and Ningbo; small \
appliances in Ningbo, Cixi, Foshan (Shunde) and Zhongshan; trading companies in Yiwu, Guangzhou \
and Shenzhen. Supplier ids are shuffled and say nothing about the kind. \
{MISSING_RESPONSE_HOURS} suppliers have no `response_hours` and {MISSING_STAFF} no `staff`, on \
purpose: agents must answer "unknown" there.
- `listings.csv`: {summary['listings']} listings of {summary['products']} products. Each product is \
listed by exactly one source factory with the original photos, byte for byte, and re-listed at \
higher prices by {TRADERS_PER_PRODUCT[0]} to {TRADERS_PER_PRODUCT[1]} trading companies with altered \
copies of 1 to {TRADER_PHOTOS_MAX} of those photos. All listings of one product share its source \
`product_id`. Source products without any photo are left out: {skipped}.
- `images/<supplier_id>/`: {summary['images']} listing photos.
- `queries/`: {summary['reserved_queries']} reserved photos, one for each product with \
{RESERVE_MIN_PHOTOS} or more photos, kept out of every listing: the "seller's own photo". A \
non-`main` view of a colour that still has another photo is preferred; products whose colours have \
one photo each (the appliances and a few garments) give another colour instead. The eval set \
`evals/sets/demo_reserved/demo_reserved.jsonl` has one case per reserved photo.
- `ground_truth.json`: per product the source factory, every supplier and listing offering it, the \
reserved photos and the HS code.

## Ratios and ranges

| what | value |
|---|---|
| factory ex-works unit price | {span(FACTORY_PRICE_SHARE, True)} of the retail `price_usd` (drawn per product) |
| trading-company price | factory price x {span(TRADER_MARKUP)} (drawn per listing) |
| price tiers (`attributes.price_tiers`) | at {', '.join(f'{m}x' for m in TIER_QUANTITY_MULTIPLIERS)} MOQ, unit price {', '.join(f'{f * 100:.0f} %' for f in TIER_PRICE_FACTORS)} of the base price; `price_max` = first tier, `price_min` = last |
| MOQ, pieces (factory / trader) | {moq}; factory MOQs in steps of {FACTORY_MOQ_STEP} |
| lead time, days | factories: {lead}; traders: {span(TRADER_LEAD_DAYS)} |
| weight | appliances: source `weight_lb` in kg; other goods: a typical weight per kind +-{WEIGHT_JITTER * 100:.0f} % |
| altered trader photos | one of: re-crop removing {span(CROP_SHARE, True)} of width and height; JPEG re-compression at quality {span(LOW_JPEG_QUALITY)}; a watermark of the trader's short name at {span(WATERMARK_OPACITY, True)} opacity; a caption bar ({span(CAPTION_BAR_SHARE, True)} of the height) such as "HOT SALE / factory direct"; longest side at most {ALTERED_MAX_SIDE} px |
| HS codes | plausible HS 2022 subheadings per product kind (apparel also by gender and chief fibre), from the commented table in the generator; not customs rulings |
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data.demo.generator",
                                     description="Generate the synthetic demo supplier catalog.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="catalog folder to write")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--sources", type=Path, default=DEFAULT_SOURCES,
                        help="folder holding the luma/ and appliances/ source catalogs")
    parser.add_argument("--eval-set", type=Path, default=None,
                        help="where to write the eval set of reserved photos (default: "
                             "evals/sets/demo_reserved/demo_reserved.jsonl when --out is the default folder, "
                             "else none)")
    parser.add_argument("--limit-products", type=int, default=None,
                        help="at most this many products per source catalog")
    args = parser.parse_args(argv)
    eval_set = args.eval_set
    if eval_set is None and args.out.resolve() == DEFAULT_OUT.resolve():
        eval_set = DEFAULT_EVAL_SET
    summary = generate(args.out, args.seed, args.sources, limit_products=args.limit_products,
                       eval_set=eval_set)
    digest = hashlib.sha256((args.out / "listings.csv").read_bytes()).hexdigest()[:12]
    summary["listings_sha256"] = digest
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
