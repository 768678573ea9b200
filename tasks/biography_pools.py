"""The fixed world of bioS: name pools, attribute pools and sentence templates.

Everything here is a pure function of constants (no population seed): the same pools on every run.
Invented words (names, cities, university and company stems) are built from syllables and written
as word pieces, `Ka ##ren`, the way a subword tokenizer splits rare names; the pools are disjoint,
so every full name and every attribute value has exactly one spelling.
"""
from __future__ import annotations

import functools

import numpy as np

ONSETS = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br")
VOWELS = ("a", "e", "i", "o", "u")
SYLLABLES = tuple(o + v for o in ONSETS for v in VOWELS)  # 80

NUM_FIRST, NUM_MIDDLE, NUM_LAST = 400, 400, 1000
NUM_CITIES, NUM_UNIVERSITIES, NUM_COMPANIES = 200, 300, 263
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
DAYS = 28
FIRST_YEAR, NUM_YEARS = 1900, 200

MAJORS = (
    "Computer Science", "Mathematics", "Physics", "Chemistry", "Biology", "Economics", "History",
    "Philosophy", "Psychology", "Sociology", "Anthropology", "Linguistics", "Political Science",
    "English Literature", "Comparative Literature", "Music", "Fine Arts", "Art History",
    "Architecture", "Mechanical Engineering", "Electrical Engineering", "Civil Engineering",
    "Chemical Engineering", "Aerospace Engineering", "Biomedical Engineering",
    "Industrial Engineering", "Materials Science", "Environmental Science", "Geology", "Astronomy",
    "Statistics", "Data Science", "Nursing", "Medicine", "Pharmacy", "Dentistry", "Public Health",
    "Nutrition", "Kinesiology", "Education", "Early Childhood Education", "Special Education",
    "Business Administration", "Accounting", "Finance", "Marketing", "Management",
    "International Relations", "Law", "Criminology", "Journalism", "Communications",
    "Film Studies", "Theater", "Dance", "Graphic Design", "Industrial Design", "Urban Planning",
    "Geography", "Oceanography", "Meteorology", "Ecology", "Zoology", "Botany", "Genetics",
    "Neuroscience", "Biochemistry", "Microbiology", "Molecular Biology", "Marine Biology",
    "Agriculture", "Forestry", "Veterinary Science", "Social Work", "Religious Studies",
    "Classics", "Archaeology", "Spanish", "French", "German", "Japanese", "Chinese", "Arabic",
    "Russian", "Creative Writing", "Library Science", "Information Systems",
    "Software Engineering", "Cognitive Science", "Operations Research", "Actuarial Science",
    "Hospitality Management", "Sports Management", "Supply Chain Management", "Public Policy",
    "Gender Studies", "African Studies", "Asian Studies", "Music Theory", "Photography")

UNIVERSITY_FORMS = ("University of {}", "{} University", "{} Institute of Technology", "{} College")
COMPANY_SUFFIXES = ("Systems", "Labs", "Group", "Industries", "Motors", "Foods", "Energy", "Media",
                    "Bank", "Health", "Logistics")

ATTRIBUTES = ("birth_date", "birth_city", "university", "major", "company", "company_city")

# Sentence templates: {S} subject (name or pronoun), {P} possessive, {V} the attribute value. Each
# attribute has 10 phrasings, each written under 5 framings: 50 templates per attribute.
FRAMINGS = ("{}", "In fact , {}", "Notably , {}", "According to records , {}",
            "It is known that {}")
PHRASINGS = {
    "birth_date": (
        "{S} was born on {V} .", "{S} came into the world on {V} .", "{P} birthday is {V} .",
        "{S} was born on the day of {V} .", "{S} celebrates {P} birthday on {V} .",
        "{P} date of birth is {V} .", "{S} entered life on {V} .",
        "{S} first saw the light of day on {V} .", "{S} was welcomed into the family on {V} .",
        "{P} life began on {V} ."),
    "birth_city": (
        "{S} was born in {V} .", "{S} spent {P} early years in {V} .", "{P} birthplace is {V} .",
        "{S} came from {V} .", "{S} grew up in {V} .", "{S} was raised in {V} .",
        "{P} hometown is {V} .", "{S} originated from {V} .", "{S} first lived in {V} .",
        "{S} has roots in {V} ."),
    "university": (
        "{S} studied at {V} .", "{S} graduated from {V} .", "{S} received {P} education at {V} .",
        "{S} attended {V} .", "{S} completed {P} degree at {V} .", "{S} was a student at {V} .",
        "{P} alma mater is {V} .", "{S} enrolled at {V} .", "{S} earned a degree from {V} .",
        "{S} spent {P} college years at {V} ."),
    "major": (
        "{S} majored in {V} .", "{S} studied the subject of {V} .", "{P} field of study was {V} .",
        "{S} focused on {V} .", "{S} specialized in {V} .", "{S} concentrated on {V} .",
        "{P} major was {V} .", "{S} earned a degree in {V} .", "{S} pursued {V} .",
        "{S} chose to study {V} ."),
    "company": (
        "{S} worked for {V} .", "{S} was employed by {V} .", "{S} had a job at {V} .",
        "{S} took a position at {V} .", "{P} employer was {V} .", "{S} joined {V} .",
        "{S} built a career at {V} .", "{S} was hired by {V} .", "{S} worked at {V} .",
        "{S} held a role at {V} ."),
    "company_city": (
        "{S} worked in {V} .", "{S} was based in {V} .", "{P} office was in {V} .",
        "{S} commuted to {V} .", "{S} had a workplace in {V} .", "{P} job was located in {V} .",
        "{S} spent {P} working days in {V} .", "{S} was employed in {V} .",
        "{S} practiced {P} profession in {V} .", "{P} career took place in {V} ."),
}
TEMPLATES = {a: tuple(f.format(p) for f in FRAMINGS for p in PHRASINGS[a]) for a in ATTRIBUTES}

QUESTIONS = {
    "birth_date": "What is the birth date of {N} ?",
    "birth_city": "What is the birth city of {N} ?",
    "university": "Which university did {N} study ?",
    "major": "What major did {N} study ?",
    "company": "Which company did {N} work for ?",
    "company_city": "Where did {N} work ?",
}
ANSWER_PROMPT = ("Answer", ":")
PRONOUNS = {0: ("he", "his"), 1: ("she", "her")}  # gender 0 male, 1 female
POSSESSIVE = "'s"


def _word(syllable_ids) -> tuple[str, ...]:
  """Word pieces of an invented word: a capitalised first syllable, then `##` continuations."""
  first, *rest = (SYLLABLES[i] for i in syllable_ids)
  return (first.capitalize(), *("##" + s for s in rest))


@functools.lru_cache(maxsize=None)
def pools() -> dict[str, tuple[tuple[str, ...], ...]]:
  """Every pool as a tuple of token tuples; invented words never repeat across or within pools."""
  rng = np.random.default_rng(20240531)
  n = len(SYLLABLES)
  two = rng.permutation(n * n)  # distinct two-syllable words, shared out between pools
  three = rng.choice(n ** 3, NUM_LAST, replace=False)
  words2 = [_word(divmod(int(i), n)) for i in two]
  sizes = dict(first=NUM_FIRST, middle=NUM_MIDDLE, city=NUM_CITIES,
               university=NUM_UNIVERSITIES, company=NUM_COMPANIES)
  cut, start = {}, 0
  for name, size in sizes.items():
    cut[name] = words2[start:start + size]
    start += size
  last = [_word((int(i) // n // n, int(i) // n % n, int(i) % n)) for i in three]
  universities = []
  for i, stem in enumerate(cut["university"]):
    before, after = UNIVERSITY_FORMS[i % len(UNIVERSITY_FORMS)].split("{}")
    universities.append((*before.split(), *stem, *after.split()))
  companies = [stem + (COMPANY_SUFFIXES[i % len(COMPANY_SUFFIXES)],)
               for i, stem in enumerate(cut["company"])]
  return dict(first=tuple(cut["first"]), middle=tuple(cut["middle"]), last=tuple(last),
              city=tuple(cut["city"]), university=tuple(universities),
              major=tuple(tuple(m.split()) for m in MAJORS), company=tuple(companies))


@functools.lru_cache(maxsize=None)
def company_hq() -> np.ndarray:
  """The fixed headquarters city of each company."""
  return np.random.default_rng(20240601).integers(NUM_CITIES, size=NUM_COMPANIES)


def date_tokens(year: int, month: int, day: int) -> tuple[str, ...]:
  """`October 2 , 1996` from indices (year 0..199, month 0..11, day 0..27)."""
  return (MONTHS[month], str(day + 1), ",", str(FIRST_YEAR + year))
