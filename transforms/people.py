"""Synthetic person records with duplicates and ground truth, one chunk at a time.

The records mirror the FEBRL data sets (Christen, "Febrl - a freely available record
linkage system", 2008): the same ten fields, lower-case strings, Australian states and
4-digit postcodes, so one blocking / matching configuration works on both.

Generator model
---------------
1. **People.** Each chunk holds ``entities`` distinct people with ids
   ``chunk * entities + i``. Given names and surnames follow Faker's ``en_US`` frequency
   weights (census-derived, so heavily skewed); streets are a surname or given name plus a
   suffix from Faker's ``en_AU`` list, weighted towards the common ones (Street, Road, ...);
   suburbs are a fixed vocabulary built at import from Faker's ``en_AU`` city patterns, with
   Zipf popularity (exponent 0.5), each with one state and one postcode (so the three
   fields agree, as in real addresses). Dates of birth are uniform over 1930-2006.
2. **Records.** Every person has one original record. In ``dedupe`` mode a person has,
   with probability ``duplicate_rate``, ``k`` in ``1..max_duplicates`` further records
   (``P(k) ~ 1/k``), all in source ``people``. In ``link`` mode a person is, with
   probability ``link_overlap``, in both sources (original in ``a``, one copy in ``b``),
   otherwise in one of them at random: no duplicates within a source, like FEBRL 4.
3. **Missing values.** Every record, original or not, independently loses a few fields
   (``ORIGINAL_MISSING``, about FEBRL's rates): different forms capture different fields.
4. **Corruption.** Only the non-original records are corrupted, each one independently
   from the true person (not a chain of copies). ``DEFAULT_CORRUPTION`` gives each kind's
   rate, all scaled by ``error_rate``; a corrupted record gets at least one edit, about two
   on average: typos (keyboard-neighbour or phonetic substitution, insertion, deletion,
   transposition), nicknames, abbreviations, swapped fields, date-of-birth and digit
   errors, and missing fields. With the defaults a duplicate differs from its original in
   2.3 fields on average and the mean character 3-gram Jaccard of the two records is 0.80;
   FEBRL 4 (dataset4a vs dataset4b) gives 2.2 and 0.79.
5. **Order.** Rows are shuffled within the chunk, so duplicates are not adjacent.

All randomness comes from ``numpy.random.default_rng([seed, chunk, stream])``: a chunk is
reproducible on its own (a retried Spark task gives identical rows) and only one chunk is
ever in memory. Vocabularies are loaded once, at import, from Faker's bundled lists (Faker
is never called per record); they are fixed for a given Faker version.

Example
-------
>>> batch = generate_people(chunk=0, entities=1000, seed=7)
>>> batch.schema.names[:4]
['source', 'rec_id', 'entity_id', 'given_name']
>>> pairs = truth_pairs(batch)  # ground-truth matches: source_a, id_a, source_b, id_b
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from faker.providers.address.en_AU import Provider as _AddressAU
from faker.providers.person.en_US import Provider as _PersonUS

from sigil.schemas import datasets

PEOPLE_SCHEMA = datasets.PEOPLE
TRUTH_SCHEMA = datasets.TRUTH
PERSON_FIELDS: tuple[str, ...] = tuple(PEOPLE_SCHEMA.names[3:])
MODES = ("dedupe", "link")

# Rates per corrupted record: "typo" is the mean number of typos (Poisson); the others are
# probabilities. "nickname" applies only to given names in the table, "abbreviation" to
# each field that has an abbreviable word.
DEFAULT_CORRUPTION: dict[str, float] = {
    "typo": 0.8,
    "missing": 0.15,
    "swap_names": 0.04,
    "swap_address": 0.02,
    "nickname": 0.5,
    "abbreviation": 0.3,
    "date_of_birth": 0.12,
    "digits": 0.15,
}
# Probability that any record (original or not) lacks the field; about FEBRL 4's rates.
ORIGINAL_MISSING: dict[str, float] = {
    "given_name": 0.02, "surname": 0.01, "street_number": 0.03, "address_1": 0.02,
    "address_2": 0.10, "suburb": 0.01, "postcode": 0.005, "state": 0.01,
    "date_of_birth": 0.02, "soc_sec_id": 0.005,
}
_FIELD = {f: i for i, f in enumerate(PERSON_FIELDS)}
# Which fields each corruption picks from, and how likely each one is.
_TYPO_FIELDS = {"given_name": 0.22, "surname": 0.22, "address_1": 0.2, "address_2": 0.1,
                "suburb": 0.2, "state": 0.06}
_DIGIT_FIELDS = {"street_number": 0.3, "postcode": 0.3, "soc_sec_id": 0.4}
_MISSING_FIELDS = {"given_name": 0.15, "surname": 0.05, "street_number": 0.12,
                   "address_1": 0.12, "address_2": 0.25, "suburb": 0.08, "postcode": 0.05,
                   "state": 0.08, "date_of_birth": 0.06, "soc_sec_id": 0.04}
_ABBREV_FIELDS = ("address_1", "address_2", "suburb")

# --- nicknames: formal name -> common English short forms (used in both directions) ------
_NICKNAMES = {
    "william": ("bill", "will", "billy", "liam"), "robert": ("bob", "rob", "bobby"),
    "richard": ("rick", "dick", "rich"), "james": ("jim", "jimmy", "jamie"),
    "john": ("jack", "johnny"), "joseph": ("joe", "joey"), "michael": ("mike", "mick"),
    "david": ("dave",), "christopher": ("chris",), "matthew": ("matt",),
    "daniel": ("dan", "danny"), "thomas": ("tom", "tommy"), "anthony": ("tony",),
    "andrew": ("andy", "drew"), "steven": ("steve",), "stephen": ("steve",),
    "timothy": ("tim",), "jeffrey": ("jeff",), "kenneth": ("ken", "kenny"),
    "edward": ("ed", "eddie", "ted"), "charles": ("charlie", "chuck"),
    "benjamin": ("ben",), "samuel": ("sam",), "nicholas": ("nick",), "alexander": ("alex",),
    "jonathan": ("jon",), "joshua": ("josh",), "zachary": ("zach",), "patrick": ("pat",),
    "gregory": ("greg",), "raymond": ("ray",), "ronald": ("ron",), "donald": ("don",),
    "lawrence": ("larry",), "gerald": ("jerry",), "douglas": ("doug",), "peter": ("pete",),
    "frederick": ("fred",), "nathan": ("nate",), "jacob": ("jake",), "vincent": ("vince",),
    "phillip": ("phil",), "philip": ("phil",), "leonard": ("len", "leo"), "walter": ("walt",),
    "eugene": ("gene",), "elizabeth": ("liz", "beth", "betty", "eliza"),
    "katherine": ("kate", "kathy", "katie"), "catherine": ("cathy", "kate"),
    "kathleen": ("kathy",), "margaret": ("maggie", "peggy", "meg"),
    "jennifer": ("jen", "jenny"), "jessica": ("jess",), "rebecca": ("becky", "becca"),
    "patricia": ("pat", "trish"), "deborah": ("debbie", "deb"), "susan": ("sue", "susie"),
    "barbara": ("barb",), "christine": ("chris", "tina"), "christina": ("tina",),
    "victoria": ("vicky", "tori"), "samantha": ("sam",), "jacqueline": ("jackie",),
    "theresa": ("terri",), "pamela": ("pam",), "cynthia": ("cindy",), "kimberly": ("kim",),
    "abigail": ("abby",), "amanda": ("mandy",), "melissa": ("mel",), "stephanie": ("steph",),
    "natalie": ("nat",), "valerie": ("val",), "dorothy": ("dot",), "judith": ("judy",),
    "virginia": ("ginny",), "allison": ("ally",), "alexandra": ("alex",),
}

# --- abbreviations of address words (full form -> short form) ----------------------------
_ABBREVIATIONS = {
    "street": "st", "road": "rd", "avenue": "ave", "drive": "dr", "place": "pl",
    "court": "ct", "crescent": "cres", "close": "cl", "lane": "ln", "parade": "pde",
    "circuit": "cct", "terrace": "tce", "grove": "gr", "boulevard": "blvd", "highway": "hwy",
    "square": "sq", "esplanade": "esp", "parkway": "pkwy", "heights": "hts",
    "gardens": "gdns", "point": "pt", "crossing": "xing",
    "north": "nth", "south": "sth", "east": "e", "west": "w", "port": "pt", "saint": "st",
    "mount": "mt", "apartment": "apt", "unit": "u", "level": "lvl", "village": "vlge",
    "retirement": "retmt", "house": "hse", "estate": "est",
}

# Street suffixes by rough share of Australian street names; Faker's others share the rest.
_COMMON_SUFFIXES = {
    "Street": 30, "Road": 14, "Avenue": 8, "Drive": 7, "Place": 6, "Court": 5,
    "Crescent": 5, "Close": 3, "Lane": 3, "Parade": 2, "Circuit": 2, "Way": 2,
    "Terrace": 1.5, "Grove": 1.5, "Boulevard": 1, "Highway": 1,
}
_OTHER_SUFFIXES_SHARE = 8.0
# address_2: a unit in a building, or a named property (FEBRL's "rosetta village" kind).
_UNIT_WORDS = ("unit", "flat", "apartment", "level", "villa", "suite")
_PROPERTY_WORDS = ("house", "lodge", "manor", "village", "park", "gardens", "court", "views",
                   "downs", "estate", "retirement village", "homestead")
# Australian states: population share, postcode range (inclusive).
_STATES = {
    "nsw": (0.32, 2000, 2599), "vic": (0.26, 3000, 3999), "qld": (0.20, 4000, 4999),
    "wa": (0.10, 6000, 6797), "sa": (0.07, 5000, 5799), "tas": (0.02, 7000, 7799),
    "act": (0.02, 2600, 2618), "nt": (0.01, 800, 899),
}
_N_SUBURBS = 4000
_DOB_RANGE = (np.datetime64("1930-01-01"), np.datetime64("2007-01-01"))

# Streams of the per-chunk generator, so that e.g. changing duplicate_rate leaves the
# people themselves unchanged.
_PEOPLE, _LAYOUT, _CORRUPT, _SHUFFLE = range(4)


def _weighted(mapping: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Lower-case names and normalised weights from a Faker name -> frequency mapping."""
    names = np.array([n.lower() for n in mapping], dtype=object)
    w = np.fromiter(mapping.values(), dtype=float, count=len(mapping))
    return names, w / w.sum()


def _suffix_vocabulary() -> tuple[np.ndarray, np.ndarray]:
    """Faker's en_AU street suffixes, the common ones weighted as in real address books."""
    faker_suffixes = list(dict.fromkeys(_AddressAU.street_suffixes))
    missing = set(_COMMON_SUFFIXES) - set(faker_suffixes)
    assert not missing, f"street suffixes not in Faker's list: {sorted(missing)}"
    rest = [s for s in faker_suffixes if s not in _COMMON_SUFFIXES]
    weights = dict(_COMMON_SUFFIXES) | {s: _OTHER_SUFFIXES_SHARE / len(rest) for s in rest}
    return _weighted(weights)


def _suburb_vocabulary(first: np.ndarray, last: np.ndarray):
    """Suburb names from Faker's en_AU city patterns, each with one state and postcode.

    Built with a fixed seed, so the vocabulary is the same in every process. Returns the
    names, their (Zipf) popularity, state and postcode.
    """
    rng = np.random.default_rng(20240601)
    prefixes = [p.lower().replace("st.", "saint") for p in _AddressAU.city_prefixes]
    suffixes = list(dict.fromkeys(_AddressAU.city_suffixes))
    names: dict[str, None] = {}
    while len(names) < _N_SUBURBS:
        stem = str(rng.choice(first if rng.random() < 0.5 else last))
        pattern = rng.integers(4)  # Faker's four en_AU city_formats
        prefix = str(rng.choice(prefixes))
        suffix = str(rng.choice(suffixes))
        names[(
            f"{prefix} {stem}{suffix}", f"{prefix} {stem}", f"{stem}{suffix}", f"{stem}{suffix}"
        )[pattern]] = None
    suburbs = np.array(list(names), dtype=object)
    # Zipf with exponent 0.5: the largest suburb holds ~1% of people, as in FEBRL.
    popularity = np.arange(1, _N_SUBURBS + 1) ** -0.5
    states = list(_STATES)
    share = np.array([_STATES[s][0] for s in states])
    state_idx = rng.choice(len(states), size=_N_SUBURBS, p=share / share.sum())
    lo = np.array([_STATES[s][1] for s in states])[state_idx]
    hi = np.array([_STATES[s][2] for s in states])[state_idx]
    postcodes = np.char.zfill(rng.integers(lo, hi + 1).astype(str), 4).astype(object)
    state = np.array(states, dtype=object)[state_idx]
    return suburbs, popularity / popularity.sum(), state, postcodes


def _alternate_names() -> dict[str, tuple[str, ...]]:
    """Name -> the names it may be written as: nicknames of a formal name, and back."""
    alts: dict[str, list[str]] = {}
    for formal, nicks in _NICKNAMES.items():
        alts.setdefault(formal, []).extend(nicks)
        for nick in nicks:
            alts.setdefault(nick, []).append(formal)
    return {k: tuple(dict.fromkeys(v)) for k, v in alts.items()}


def _keyboard_neighbours() -> dict[str, str]:
    """Keys adjacent on a QWERTY keyboard (row stagger included); digits only to digits."""
    rows, stagger = ("qwertyuiop", "asdfghjkl", "zxcvbnm"), (0.0, 0.25, 0.75)
    where = {c: (r, i + stagger[r]) for r, row in enumerate(rows) for i, c in enumerate(row)}
    near = {c: "".join(d for d, (r2, x2) in where.items()
                       if d != c and abs(r2 - r) <= 1 and abs(x2 - x) <= 1.0)
            for c, (r, x) in where.items()}
    digits = "1234567890"
    for i, d in enumerate(digits):
        near[d] = digits[max(i - 1, 0):i] + digits[i + 1:i + 2]
    return near


# --- vocabularies, loaded once ------------------------------------------------------------
_GIVEN, _GIVEN_P = _weighted(_PersonUS.first_names)
_SURNAME, _SURNAME_P = _weighted(_PersonUS.last_names)
_SUFFIX, _SUFFIX_P = _suffix_vocabulary()
_SUBURB, _SUBURB_P, _SUBURB_STATE, _SUBURB_POSTCODE = _suburb_vocabulary(_GIVEN, _SURNAME)
_UNIT_WORDS_ARR = np.array(_UNIT_WORDS, dtype=object)
_PROPERTY_WORDS_ARR = np.array(_PROPERTY_WORDS, dtype=object)
_ALTERNATES = _alternate_names()
_NEAR_KEYS = _keyboard_neighbours()
_PHONETIC = {"c": "ks", "k": "c", "s": "zc", "z": "s", "i": "ye", "y": "i", "e": "ai",
             "a": "e", "o": "u", "u": "o", "m": "n", "n": "m", "b": "p", "p": "b", "d": "t",
             "t": "d", "g": "j", "j": "g", "f": "v", "v": "f", "q": "k", "x": "z", "w": "v"}
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_INSERT, _DELETE, _SUBSTITUTE, _TRANSPOSE = range(4)
_TYPO_OP_P = np.array([0.25, 0.2, 0.4, 0.15])  # substitutions: the most common typing error


# --- people ------------------------------------------------------------------------------
def _draw_people(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """The true values of n people, one object array of strings per field."""
    given = _GIVEN[rng.choice(len(_GIVEN), n, p=_GIVEN_P)]
    surname = _SURNAME[rng.choice(len(_SURNAME), n, p=_SURNAME_P)]
    # Streets are named after people (Faker's "{last_name|first_name} {suffix}").
    street = np.where(rng.random(n) < 0.7, _SURNAME[rng.integers(len(_SURNAME), size=n)],
                      _GIVEN[rng.integers(len(_GIVEN), size=n)])
    address_1 = street + " " + _SUFFIX[rng.choice(len(_SUFFIX), n, p=_SUFFIX_P)]
    # House numbers: median ~23 with a long tail, as in FEBRL.
    number = np.maximum(1, rng.lognormal(np.log(23), 1.2, n)).astype(np.int64)
    suburb = rng.choice(len(_SUBURB), n, p=_SUBURB_P)
    dob = _DOB_RANGE[0] + rng.integers(0, (_DOB_RANGE[1] - _DOB_RANGE[0]).astype(np.int64), n)
    ssn = rng.integers(1_000_000, 10_000_000, n)
    return [given, surname, _as_text(number), address_1, _draw_address_2(rng, n),
            _SUBURB[suburb], _SUBURB_POSTCODE[suburb], _SUBURB_STATE[suburb],
            _yyyymmdd(dob), _as_text(ssn)]


def _draw_address_2(rng: np.random.Generator, n: int) -> np.ndarray:
    """A unit ("unit 12") for 40%, a named property ("smith lodge") for the others."""
    unit = (_UNIT_WORDS_ARR[rng.integers(len(_UNIT_WORDS), size=n)] + " "
            + _as_text(rng.integers(1, 40, n)))
    owner = _SURNAME[rng.integers(len(_SURNAME), size=n)]
    prop = owner + " " + _PROPERTY_WORDS_ARR[rng.integers(len(_PROPERTY_WORDS), size=n)]
    return np.where(rng.random(n) < 0.4, unit, prop)


def _as_text(values: np.ndarray) -> np.ndarray:
    """Integers as an object array of decimal strings."""
    return values.astype(str).astype(object)


def _yyyymmdd(days: np.ndarray) -> np.ndarray:
    """datetime64[D] values as YYYYMMDD strings (FEBRL's date format)."""
    years = days.astype("M8[Y]")
    months = days.astype("M8[M]")
    y = years.astype(np.int64) + 1970
    m = (months - years.astype("M8[M]")).astype(np.int64) + 1
    d = (days - months.astype("M8[D]")).astype(np.int64) + 1
    return _as_text(y * 10000 + m * 100 + d)


# --- records: which person, which copy, which source --------------------------------------
def _layout(rng: np.random.Generator, n: int, mode: str, duplicate_rate: float,
            max_duplicates: int, link_overlap: float):
    """Per record: person index, copy number (0 = the original) and source name."""
    people = np.arange(n)
    if mode == "dedupe":
        k_p = 1.0 / np.arange(1, max_duplicates + 1)
        extra = 1 + rng.choice(max_duplicates, n, p=k_p / k_p.sum())
        n_dup = np.where(rng.random(n) < duplicate_rate, extra, 0)
        dup_of = np.repeat(people, n_dup)
        # copy number within each person: 1, 2, ... (dup_of is sorted)
        copy = np.arange(len(dup_of)) - np.repeat(np.cumsum(n_dup) - n_dup, n_dup) + 1
        source = np.full(n + len(dup_of), "people", dtype=object)
    else:
        both = rng.random(n) < link_overlap
        only_b = ~both & (rng.random(n) < 0.5)
        dup_of = np.flatnonzero(both)
        copy = np.ones(len(dup_of), dtype=np.int64)
        source = np.concatenate([np.where(only_b, "b", "a").astype(object),
                                 np.full(len(dup_of), "b", dtype=object)])
    return (np.concatenate([people, dup_of]),
            np.concatenate([np.zeros(n, dtype=np.int64), copy]), source)


def _rec_ids(entity_id: np.ndarray, copy: np.ndarray) -> np.ndarray:
    """FEBRL-style ids: rec-<entity>-org for originals, rec-<entity>-dup-<k> for copies."""
    tags = np.array(["-org"] + [f"-dup-{k}" for k in range(int(copy.max(initial=0)))],
                    dtype=object)
    return "rec-" + _as_text(entity_id) + tags[copy]


# --- corruption ---------------------------------------------------------------------------
def _notnull(col: np.ndarray) -> np.ndarray:
    return np.not_equal(col, None)


def _pick_fields(rng: np.random.Generator, cols: list[np.ndarray], rows: np.ndarray,
                 weights: Mapping[str, float]) -> np.ndarray:
    """Per row, a field index drawn by weight among that row's non-null fields (-1: none)."""
    idx = np.array([_FIELD[f] for f in weights])
    w = np.stack([_notnull(cols[i][rows]) for i in idx], axis=1) * np.fromiter(
        weights.values(), dtype=float)
    cum = w.cumsum(axis=1)
    u = rng.random(len(rows)) * cum[:, -1]
    first_above = np.minimum((cum <= u[:, None]).sum(axis=1), len(idx) - 1)
    return np.where(cum[:, -1] > 0, idx[first_above], -1)


def _drop_values(rng: np.random.Generator, cols: list[np.ndarray],
                 rates: Mapping[str, float]) -> None:
    """Set each field to null with its own probability, independently per record."""
    for field, p in rates.items():
        cols[_FIELD[field]][rng.random(len(cols[0])) < p] = None


def _typo(s: str, op: int, a: float, b: float, c: float) -> str:
    """One typing error in s; a, b, c are uniforms (position, variant, replacement)."""
    n = len(s)
    if n < 2 and op != _INSERT:
        op = _SUBSTITUTE  # never delete a string away, nothing to transpose
    i = min(int(a * n), n - 1)
    if op == _INSERT:  # a doubled key, or a neighbouring key hit as well
        extra = s[i] if b < 0.4 else _pick(_NEAR_KEYS.get(s[i], _LETTERS), c)
        return s[:i + 1] + extra + s[i + 1:]
    if op == _DELETE:
        return s[:i] + s[i + 1:]
    if op == _TRANSPOSE:
        i = min(i, n - 2)
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    pool = (_PHONETIC.get(s[i]) if b < 0.35 else None) or _NEAR_KEYS.get(s[i], _LETTERS)
    return s[:i] + _pick(pool, c) + s[i + 1:]


def _digit_typo(s: str, a: float, b: float, c: float) -> str:
    """A mistyped digit (a neighbouring key) or two adjacent digits transposed."""
    n = len(s)
    i = min(int(a * n), n - 1)
    if b < 0.3 and n >= 2:
        i = min(i, n - 2)
        if s[i] != s[i + 1]:
            return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    return s[:i] + _pick(_NEAR_KEYS.get(s[i], "0123456789"), c) + s[i + 1:]


def _pick(pool: str, u: float) -> str:
    return pool[min(int(u * len(pool)), len(pool) - 1)]


def _nicknames(rng: np.random.Generator, given: np.ndarray, p: float) -> np.ndarray:
    """Replace given names by a nickname (or a nickname by its formal name); mask of edits."""
    done = np.zeros(len(given), dtype=bool)
    rows = np.flatnonzero(rng.random(len(given)) < p)
    for r, u in zip(rows.tolist(), rng.random(len(rows)).tolist()):
        alts = _ALTERNATES.get(given[r])
        if alts:
            given[r] = alts[int(u * len(alts))]
            done[r] = True
    return done


def _abbreviate(rng: np.random.Generator, cols: list[np.ndarray], p: float) -> np.ndarray:
    """Abbreviate the address words ("street" -> "st") of a field; mask of records edited."""
    done = np.zeros(len(cols[0]), dtype=bool)
    for field in _ABBREV_FIELDS:
        col = cols[_FIELD[field]]
        for r in np.flatnonzero(rng.random(len(col)) < p).tolist():
            if col[r] is None:
                continue
            words = col[r].split(" ")
            for i in _address_words(field, words):
                words[i] = _ABBREVIATIONS.get(words[i], words[i])
            short = " ".join(words)
            if short != col[r]:
                col[r] = short
                done[r] = True
    return done


def _address_words(field: str, words: list[str]) -> range:
    """Positions of the words that may be abbreviated: not the person a place is named after
    ("west street" -> "west st", never "w st")."""
    if field == "suburb":  # the prefix of "north smithton"
        return range(0, 1 if len(words) > 1 else 0)
    if words[-1].isdigit():  # "unit 12"
        return range(0, len(words) - 1)
    return range(1, len(words))  # "smith street", "smith retirement village"


def _swap(rng: np.random.Generator, cols: list[np.ndarray], f1: str, f2: str,
          p: float) -> np.ndarray:
    """Swap two fields (surname entered as given name, ...); mask of records swapped."""
    a, b = cols[_FIELD[f1]], cols[_FIELD[f2]]
    m = rng.random(len(a)) < p
    a[m], b[m] = b[m], a[m].copy()
    return m


def _dob_errors(rng: np.random.Generator, dob: np.ndarray, p: float) -> np.ndarray:
    """Day and month swapped (when that is still a date) or one digit mistyped."""
    done = np.zeros(len(dob), dtype=bool)
    rows = np.flatnonzero((rng.random(len(dob)) < p) & _notnull(dob))
    for r, (a, b, c) in zip(rows.tolist(), rng.random((len(rows), 3)).tolist()):
        s = dob[r]
        if a < 0.4 and s[4:6] != s[6:8] and int(s[6:8]) <= 12:
            dob[r] = s[:4] + s[6:8] + s[4:6]
        else:  # not the century: "19"/"20" is rarely mistyped
            i = 2 + int(b * 6)
            dob[r] = s[:i] + str((int(s[i]) + 1 + int(c * 9)) % 10) + s[i + 1:]
        done[r] = True
    return done


def _digit_errors(rng: np.random.Generator, cols: list[np.ndarray], p: float) -> np.ndarray:
    """One digit error in the house number, postcode or social security id."""
    done = rng.random(len(cols[0])) < p
    rows = np.flatnonzero(done)
    fields = _pick_fields(rng, cols, rows, _DIGIT_FIELDS)
    u = rng.random((len(rows), 3)).tolist()
    for r, f, (a, b, c) in zip(rows.tolist(), fields.tolist(), u):
        if f < 0:
            done[r] = False
        else:
            cols[f][r] = _digit_typo(cols[f][r], a, b, c)
    return done


def _typos(rng: np.random.Generator, cols: list[np.ndarray], n_typos: np.ndarray) -> None:
    """n_typos[r] typing errors in the text fields of record r."""
    rows = np.repeat(np.arange(len(n_typos)), n_typos)
    fields = _pick_fields(rng, cols, rows, _TYPO_FIELDS).tolist()
    ops = rng.choice(len(_TYPO_OP_P), len(rows), p=_TYPO_OP_P).tolist()
    u = rng.random((len(rows), 3)).tolist()
    for r, f, op, (a, b, c) in zip(rows.tolist(), fields, ops, u):
        if f >= 0:
            cols[f][r] = _typo(cols[f][r], op, a, b, c)


def _blank(rng: np.random.Generator, cols: list[np.ndarray], rows: np.ndarray) -> None:
    """Null one non-null field of each given record."""
    fields = _pick_fields(rng, cols, rows, _MISSING_FIELDS)
    for f in np.unique(fields[fields >= 0]):
        cols[f][rows[fields == f]] = None


def _corrupt(rng: np.random.Generator, cols: list[np.ndarray],
             rates: Mapping[str, float]) -> None:
    """Corrupt every record of cols in place (one object array per field).

    Word-level edits come first (a nickname is then typo'd like any name), missing
    values last (a typo in a field that then goes missing would be lost). A record that
    drew no edit at all gets one typo, so every corrupted record differs from the truth.
    """
    n = len(cols[0])
    edits = _nicknames(rng, cols[_FIELD["given_name"]], rates["nickname"]).astype(np.int64)
    edits += _abbreviate(rng, cols, rates["abbreviation"])
    edits += _swap(rng, cols, "given_name", "surname", rates["swap_names"])
    edits += _swap(rng, cols, "address_1", "address_2", rates["swap_address"])
    edits += _dob_errors(rng, cols[_FIELD["date_of_birth"]], rates["date_of_birth"])
    edits += _digit_errors(rng, cols, rates["digits"])
    missing = rng.random(n) < rates["missing"]
    n_typos = rng.poisson(rates["typo"], n)
    if rates["typo"] > 0:
        n_typos[(edits == 0) & ~missing & (n_typos == 0)] = 1
    _typos(rng, cols, n_typos)
    _blank(rng, cols, np.flatnonzero(missing))


# --- public API ---------------------------------------------------------------------------
def _rng(seed: int, chunk: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, chunk, stream])


def _check(name: str, value, ok: bool, allowed: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _corruption_rates(error_rate: float, corruption: Mapping[str, float] | None):
    """DEFAULT_CORRUPTION overridden by `corruption`, scaled by error_rate."""
    rates = dict(DEFAULT_CORRUPTION)
    for kind, rate in (corruption or {}).items():
        _check("corruption key", kind, kind in rates, f"one of {sorted(rates)}")
        _check(f"corruption[{kind!r}]", rate, rate >= 0, ">= 0")
        rates[kind] = float(rate)
    scaled = {k: v * error_rate for k, v in rates.items()}
    return {k: (v if k == "typo" else min(v, 1.0)) for k, v in scaled.items()}


def generate_people(chunk: int, entities: int, *, seed: int = 0, mode: str = "dedupe",
                    duplicate_rate: float = 0.3, max_duplicates: int = 3,
                    link_overlap: float = 0.5, error_rate: float = 1.0,
                    corruption: Mapping[str, float] | None = None) -> pa.RecordBatch:
    """Records for `entities` distinct people of chunk `chunk`, shuffled.

    Columns: ``source``, ``rec_id``, ``entity_id`` (int64, ``chunk * entities + i``), then
    PERSON_FIELDS (nullable strings); schema PEOPLE_SCHEMA. Identical for identical
    arguments, and independent of any other chunk.

    mode="dedupe": source "people"; each person has an original record and, with
    probability `duplicate_rate`, 1..`max_duplicates` corrupted duplicates (P(k) ~ 1/k).
    mode="link": sources "a" and "b"; with probability `link_overlap` a person has the
    original in "a" and a corrupted copy in "b", else one original in either source.

    rec_id is ``rec-<entity_id>-org`` or ``rec-<entity_id>-dup-<k>``, k = 0, 1, ...
    (FEBRL's style): unique across chunks and sources, an id and never a field to block on.

    Corruption of the copies: `corruption` overrides DEFAULT_CORRUPTION's rates per kind,
    and `error_rate` scales all of them (0: exact copies, apart from missing values). The
    model (originals, then independently corrupted duplicates) is FEBRL's generator's [1]_;
    the module docstring gives it in full.

    Parameters
    ----------
    chunk : int
        Chunk index, >= 0; part of the random streams' key and of the entity ids.
    entities : int
        Distinct people in the chunk, >= 0.
    seed : int, default 0
        Seed, >= 0.
    mode : {"dedupe", "link"}, default "dedupe"
        One source with duplicates, or two sources without.
    duplicate_rate : float, default 0.3
        dedupe: probability that a person has duplicates, in [0, 1].
    max_duplicates : int, default 3
        dedupe: most duplicates of one person, >= 1.
    link_overlap : float, default 0.5
        link: probability that a person is in both sources, in [0, 1].
    error_rate : float, default 1.0
        Scale of every corruption rate, >= 0.
    corruption : mapping, optional
        Rates overriding ``DEFAULT_CORRUPTION``'s, by kind (each >= 0).

    Returns
    -------
    pyarrow.RecordBatch
        ``PEOPLE_SCHEMA`` rows, shuffled.

    Raises
    ------
    ValueError
        On a parameter out of range or an unknown corruption kind, naming it.

    References
    ----------
    .. [1] P. Christen, "Probabilistic data generation for deduplication and data linkage",
       IDEAL 2005. doi:10.1007/11508069_15

    Examples
    --------
    >>> batch = generate_people(chunk=0, entities=5, seed=1, duplicate_rate=1.0, max_duplicates=1)
    >>> batch.num_rows, sorted(batch.column("rec_id").to_pylist())[:3]
    (10, ['rec-0-dup-0', 'rec-0-org', 'rec-1-dup-0'])
    >>> generate_people(chunk=0, entities=5, seed=1, duplicate_rate=1.0, max_duplicates=1).equals(batch)
    True
    """
    _check("mode", mode, mode in MODES, f"one of {MODES}")
    for name, v in (("chunk", chunk), ("entities", entities), ("seed", seed)):
        _check(name, v, _is_int(v) and v >= 0, "an integer >= 0")
    _check("max_duplicates", max_duplicates, _is_int(max_duplicates) and max_duplicates >= 1,
           "an integer >= 1")
    for name, v in (("duplicate_rate", duplicate_rate), ("link_overlap", link_overlap)):
        _check(name, v, 0.0 <= v <= 1.0, "in [0, 1]")
    _check("error_rate", error_rate, error_rate >= 0, ">= 0")
    rates = _corruption_rates(error_rate, corruption)

    truth = _draw_people(_rng(seed, chunk, _PEOPLE), entities)
    person, copy, source = _layout(_rng(seed, chunk, _LAYOUT), entities, mode,
                                   duplicate_rate, max_duplicates, link_overlap)
    cols = [values[person] for values in truth]
    rng = _rng(seed, chunk, _CORRUPT)
    _drop_values(rng, cols, ORIGINAL_MISSING)
    copies = np.flatnonzero(copy > 0)
    corrupted = [col[copies] for col in cols]
    _corrupt(rng, corrupted, rates)
    for col, values in zip(cols, corrupted):
        col[copies] = values

    order = _rng(seed, chunk, _SHUFFLE).permutation(len(person))
    entity_id = chunk * entities + person[order]
    arrays = [pa.array(source[order], pa.string()),
              pa.array(_rec_ids(entity_id, copy[order]), pa.string()),
              pa.array(entity_id, pa.int64())]
    arrays += [pa.array(col[order], pa.string()) for col in cols]
    return pa.RecordBatch.from_arrays(arrays, schema=PEOPLE_SCHEMA)


def _group_pairs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j), i < j, of positions with equal keys, for keys sorted ascending."""
    n = len(keys)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    sizes = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, sizes)  # position within the group
    later = np.repeat(sizes, sizes) - rank - 1  # group members after this one
    first = np.repeat(np.arange(n), later)
    offset = np.arange(len(first)) - np.repeat(np.cumsum(later) - later, later)
    return first, first + 1 + offset


def truth_pairs(batch: pa.RecordBatch | pa.Table) -> pa.Table:
    """Ground-truth matching pairs within the given records, from ``entity_id``.

    Returns TRUTH_SCHEMA (source_a, id_a, source_b, id_b), each unordered pair once.
    With more than one source in the records (link mode) only pairs across sources, with
    source_a < source_b; otherwise (dedupe) every pair of records of one entity, oriented
    so that (source_a, id_a) < (source_b, id_b). Records with a null entity_id are skipped.

    Parameters
    ----------
    batch : pyarrow.RecordBatch or pyarrow.Table
        Records with ``source``, ``rec_id`` and ``entity_id`` (e.g. ``generate_people``'s).

    Returns
    -------
    pyarrow.Table
        ``TRUTH_SCHEMA`` rows, ordered by entity.

    Examples
    --------
    >>> import pyarrow as pa
    >>> records = pa.table({"source": ["p", "p", "p"], "rec_id": ["r2", "r1", "r3"], "entity_id": [7, 7, None]})
    >>> truth_pairs(records).to_pylist()
    [{'source_a': 'p', 'id_a': 'r1', 'source_b': 'p', 'id_b': 'r2'}]
    >>> truth_pairs(generate_people(chunk=0, entities=4, mode="link", link_overlap=1.0)).num_rows
    4
    """
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    table = table.select(["source", "rec_id", "entity_id"])
    table = table.filter(pc.is_valid(table["entity_id"]))
    # Sorted by (entity, source, id): within an entity, i < j orients every pair.
    table = table.take(pc.sort_indices(table, sort_keys=[
        ("entity_id", "ascending"), ("source", "ascending"), ("rec_id", "ascending")]))
    first, second = _group_pairs(table["entity_id"].to_numpy())
    src, ids = table["source"], table["rec_id"]
    src_a, src_b = src.take(first), src.take(second)
    pairs = pa.table([src_a, ids.take(first), src_b, ids.take(second)], schema=TRUTH_SCHEMA)
    if pc.count_distinct(src).as_py() > 1:
        pairs = pairs.filter(pc.not_equal(src_a, src_b))
    return pairs.combine_chunks()
