"""Vocabularies for synthetic people, companies and places (all fictitious)."""

from __future__ import annotations

import numpy as np

FIRST_NAMES = [
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Chris", "Karen",
    "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley", "Paul", "Emily",
    "Steven", "Donna", "Andrew", "Michelle", "Joshua", "Carol", "Kevin", "Amanda", "Brian", "Melissa",
    "Oliver", "Amelia", "Lukas", "Emma", "Jonas", "Mia", "Hugo", "Chloe", "Noah", "Sofia",
    "Liam", "Olivia", "Ethan", "Ava", "Lucas", "Isla", "Leon", "Lea", "Arthur", "Jade",
    "Priya", "Arjun", "Wei", "Mei", "Kenji", "Yuki", "Omar", "Fatima", "Diego", "Lucia",
]

LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King",
    "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell", "Mitchell", "Roberts",
    "Mueller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Dubois", "Laurent",
    "Bernard", "Moreau", "Lefevre", "Evans", "Hughes", "Edwards", "Collins", "Stewart", "Morris", "Murphy",
    "Patel", "Shah", "Chen", "Wang", "Tanaka", "Sato", "Khan", "Ali", "Santos", "Silva",
    "OBrien", "Kowalski", "Novak", "Jansen", "de Vries", "Rossi", "Russo", "Berg", "Nilsson", "Larsen",
]

COMPANY_PREFIXES = [
    "North", "Blue", "Bright", "Silver", "Iron", "Summit", "Peak", "Clear", "Swift", "Red",
    "Green", "Stone", "Cedar", "Maple", "Oak", "River", "Harbor", "Atlas", "Nova", "Orbit",
    "Vertex", "Apex", "Zen", "Quantum", "Pixel", "Cloud", "Data", "Signal", "Vector", "Prime",
    "True", "Bold", "Lumen", "Nimbus", "Terra", "Aqua", "Solar", "Lunar", "Polar", "Coastal",
    "Granite", "Falcon", "Eagle", "Fox", "Wolf", "Bear", "Hawk", "Lynx", "Otter", "Raven",
]

COMPANY_CORES = [
    "wind", "point", "bridge", "field", "stream", "gate", "works", "forge", "path", "line",
    "scale", "logic", "sight", "wave", "base", "stack", "grid", "spark", "loop", "shift",
    "labs", "tech", "soft", "ware", "metrics", "systems", "dynamics", "analytics", "health", "energy",
]

COMPANY_SUFFIXES = ["Inc", "LLC", "Ltd", "GmbH", "Corp", "Group", "Co", "SA", "BV", "PLC"]

INDUSTRIES = [
    "Software", "Financial Services", "Healthcare", "Manufacturing", "Retail", "Education",
    "Media", "Logistics", "Energy", "Telecommunications", "Professional Services", "Public Sector",
]

COUNTRIES = ["US", "GB", "DE", "FR", "CA", "AU", "NL", "SE", "ES", "IT"]
COUNTRY_WEIGHTS = np.array([0.52, 0.12, 0.10, 0.06, 0.06, 0.04, 0.04, 0.02, 0.02, 0.02])

COUNTRY_TLD = {"US": "com", "GB": "co.uk", "DE": "de", "FR": "fr", "CA": "ca", "AU": "com.au",
               "NL": "nl", "SE": "se", "ES": "es", "IT": "it"}

SUFFIX_VARIANTS = {
    "Inc": ["Inc.", "Incorporated", ", Inc."],
    "LLC": ["L.L.C.", ", LLC"],
    "Ltd": ["Limited", "Ltd."],
    "GmbH": ["G.m.b.H."],
    "Corp": ["Corporation", "Corp."],
    "Group": ["Grp"],
    "Co": ["Company", "Co."],
    "SA": ["S.A."],
    "BV": ["B.V."],
    "PLC": ["P.L.C.", "plc"],
}
