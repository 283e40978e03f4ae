"""Clinical facts a nursing note states, and how a completion's facts stand against the note and the chart.

A fact is a (kind, value) pair: `("BP", "125-149/57-70")`, `("SpO2", "94-99%")`, `("O2 device", "NC")`,
`("drip", "propofol 40 mcg/kg/min")`, `("line", "foley")` — or, for a line/tube/drain or a finding that the
text denies or removes, `("line", "no foley")`. `extract` finds:

- vital signs with their values: BP, systolic BP alone (SBP), HR, RR, SpO2 and temperature, as written (ranges
  such as `HR 70-89` and decades such as `HR 70s`, `BP 150s/80s` kept whole);
- oxygen: the delivery device (RA, NC, face mask or tent, high flow, NRB, BiPAP, CPAP, vent; `no longer requiring
  supplemental O2` is RA), its flow in L/min and FiO2;
- drips (`<drug> gtt|drip|infusion [at] <rate>`, a drug of MEDICATIONS at a rate per time, a new rate of the drip
  named last; stopped drips as `no <drug>`: `gtt off`, `titrated off`, `on hold`) and medications of MEDICATIONS
  given with a dose;
- lines, tubes and drains of LINES, and findings of FINDINGS, each present or negated.

CareVue-style (`Neuro: … CV: …`) and MetaVision-style (`Assessment: / Action: / Response: / Plan:`) notes read
alike: section headers are not needed. What it misses is MISSES (the report prints it); how often it is right is
measured on hand-labelled lines (notelm.evaluation.extraction). Values are kept as written (lower-cased, spaces
dropped) and compared as a clinician reads them (`consistent`): `HR 88` agrees with `HR 70-89` and `HR 80s`.

Why hand-written rules: medspaCy (the field's library for sections and ConText negation) 1.3 pins spaCy 3.7,
whose thinc needs numpy < 2, which pandas 3 here cannot share; nursing vital-sign shorthand needs value
patterns of its own in any case, and the negation below is NegEx/ConText's idea (a cue negates the targets
after it — or, for `d/c'd`, `removed`, before it — within its clause) with a few cues.

`classify` sorts a completion's facts against its reference (the note's real rest) and its chart (the prompt and
the patient's earlier notes): matched, contradicted (the reference states the same subject otherwise), carried
(only the chart states it: carried forward, maybe stale), a new value (the chart states the subject otherwise),
unsupported (nobody mentions the subject) or, for a negative nobody states, unsupported_negative.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from notelm.config.names import FACT_CLASSES, FACT_RATES

Fact = tuple[str, str]
MISSES = ("vital signs with words between the name and the value other than a few (`now`, `to`, `dropped to`…: "
          "`RR mid 20s`, `sats low 90s`, `improvement to 94%`), or without their name (`afebrile`, `febrile to 38.8`, "
          "`R 18`, `RVR to 150s`), decades with an apostrophe (`70's`), FiO2 named before two values (`FiO2 weaned "
          "from 60% to 40%`) or after a flow (`high flow 40L, 50%`), the trach collar, drugs outside MEDICATIONS given "
          "without `gtt`/`drip`, a drip stopped in other words (`propofol off`, `weaned to off`), doses in words, "
          "lines and findings outside LINES and FINDINGS or in other words (`no stool`, `n/v`, `pain free`), "
          "ventilator settings other than FiO2, lab values, and negation outside the clause of its cue — the "
          "held-out labelled lines' misses (labels/, `notelm facts --misses`)")

# A value as nurses write it: a number (`88`, `37.2`) or a decade (`70s`), alone or as a range (`70-89`, `80s-90s`,
# `60-70s`); words may stand between a vital sign and its value (`sats dropped to 86%`, `HR now 90s`).
_VALUE = r"\d{1,3}(?:\.\d)?s?"
_RANGE = rf"{_VALUE}(?:\s*-\s*{_VALUE})?"
_PRESSURE = r"\d{2,3}s?(?:\s*-\s*\d{2,3}s?)?"
_FILLER = (r"\s*:?\s*(?:(?:now|still|of|in the|to|up to|down to|dropped to|decreased to|increased to|improved to|"
           r"ranging|remains?|remained|stable|at|mostly)\s+)*")
VITALS: dict[str, re.Pattern] = {  # kind -> pattern whose first non-empty group is the value
    "BP": re.compile(rf"\b(?:N?BP|ABP|SBP|blood pressure){_FILLER}({_PRESSURE}\s*/\s*{_PRESSURE})", re.I),
    "SBP": re.compile(rf"\b(?:SBP|systolic(?: BP)?){_FILLER}({_RANGE})(?!\d|\.\d|\s*/)|"
                      rf"\b({_PRESSURE})\s+systolic\b", re.I),
    "HR": re.compile(rf"\b(?:HR|heart rate|pulse|(?-i:P)|(?-i:N?SR|ST|SB)){_FILLER}({_RANGE})(?!\d|\.\d|\s*/)",
                     re.I),
    "RR": re.compile(rf"\b(?:RR|resp(?:iratory)? rate){_FILLER}({_RANGE})(?!\d|\.\d)", re.I),
    "SpO2": re.compile(rf"\b(?:SpO2|SaO2|O2 sats?|sats?){_FILLER}({_RANGE})(?!\d|\.\d)\s*%?", re.I),
    "temp": re.compile(r"\b(?:T|T\s*max|Temp|temperature)\s*:?\s*(?:of\s*)?(\d{2,3}\.\d)\b", re.I),
}
O2_DEVICES: dict[str, str] = {  # what a note writes -> the device's name
    "ra": "RA", "room air": "RA", "nc": "NC", "nasal cannula": "NC", "face mask": "face mask", "fm": "face mask",
    "shovel mask": "face mask", "venti mask": "face mask", "face tent": "face tent", "high flow": "high flow",
    "hfnc": "high flow", "nrb": "NRB", "non-rebreather": "NRB", "bipap": "BiPAP", "cpap": "CPAP", "vent": "vent",
    "intubated": "vent", "trach mask": "trach mask",
}
# Oxygen no longer given is room air: `no longer requiring supplemental O2`, `O2 weaned off`, `off O2`.
ROOM_AIR = re.compile(r"\bno longer (?:requiring|requires|needing|needs|on)\s+(?:supplemental\s+)?(?:O2|oxygen)\b|"
                      r"\b(?:O2|oxygen)\s+(?:weaned|titrated|turned)\s+off\b|\boff\s+(?:supplemental\s+)?(?:O2|oxygen)\b",
                      re.I)
O2_FLOW = re.compile(r"\b(\d{1,2}(?:\.\d)?)\s*L(?:pm|/min)?\b(?=\s*(?:NC|nasal|O2|via|by|of|face|FM|high|shovel|$|[.,;]))",
                     re.I)
_MASKS = r"face mask|face tent|FM|high flow|shovel(?: mask)?|venti(?: mask)?|neb|trach mask"
FIO2 = re.compile(rf"\bFiO2{_FILLER}(\d{{2,3}})\s*%?|\b(\d{{2,3}})\s*%\s*(?:FiO2|{_MASKS})\b|"
                  rf"\b(?:{_MASKS})\s+(\d{{2,3}})\s*%", re.I)
_RATE_UNITS = (r"mcg/kg/min|mcg/kg/hr|mcg/min|mcg/hr|mg/min|mg/hr|mg/kg/hr|units?/kg/hr|units?/hr|units?/min|u/hr|"
               r"ml/hr|cc/hr")
_RATE = rf"(\d+(?:\.\d+)?)\s*({_RATE_UNITS})\b"
DRIP = re.compile(rf"\b([A-Za-z][A-Za-z-]{{2,}})\s+(?:gtt|drip|infusion)\s*(?:(?:started|running|infusing|increased|"
                  rf"decreased|titrated|weaned|restarted)\s*(?:to\s*)?)?(?:at\s*|@\s*)?(?:{_RATE})?", re.I)
# A drip stopped: `Insulin gtt off`, `Nitro gtt titrated off`, `heparin gtt on hold`, `propofol weaned off`.
DRIP_OFF = re.compile(r"\s*(?:gtt|drip|infusion)?\s*(?:was\s+|now\s+)?(?:(?:titrated|weaned|turned)\s+off|off|"
                      r"on hold|held|d/c'?d|dc'?d|discontinued|stopped)\b", re.I)
# A new rate of the drip named last: `titrated to 150 mcg/min`, `heparin decreased to 16 units/kg/hr`.
DRIP_CHANGE = re.compile(rf"\b(?:increased|decreased|titrated|weaned|changed|turned)\s+(?:up\s+|down\s+)?to\s+{_RATE}",
                         re.I)
# The word before `gtt` that is no drug (`dilt 10 mg IV x1 then gtt at 5 mg/hr`): the drug named before it instead.
NOT_DRUGS = frozenset("then the a an and on started with of all his her pt new".split())
MEDICATIONS = (  # given with a dose (`morphine 2 mg IV`); drips are recognised by gtt/drip whatever the drug
    "acetaminophen tylenol oxycodone percocet morphine dilaudid hydromorphone fentanyl ativan lorazepam haldol "
    "haloperidol versed midazolam lasix furosemide metoprolol lopressor labetalol hydralazine diltiazem dilt "
    "amiodarone amio digoxin heparin lovenox enoxaparin coumadin warfarin insulin lantus kcl potassium magnesium "
    "calcium vancomycin vanco zosyn cefepime ceftriaxone azithromycin levofloxacin flagyl protonix pantoprazole "
    "zofran ondansetron reglan colace senna lactulose albuterol atrovent nebs propofol precedex levophed neo "
    "nicardipine nitro ntg vasopressin dopamine dobutamine epi esmolol milrinone adenosine atropine ns lr albumin "
    "prednisone solumedrol"
).split()
_DRUGS = "|".join(MEDICATIONS)
_DOSE_UNITS = r"mg|mcg|gm?|units?|u|meq|ml|cc|L|tabs?"
MED_DOSE = re.compile(rf"\b({_DRUGS})\s+(\d+(?:\.\d+)?)\s*({_DOSE_UNITS})\b(?!/)", re.I)
MED_DOSE_FIRST = re.compile(rf"\b(\d+(?:\.\d+)?)\s*({_DOSE_UNITS})\s+(?:of\s+)?({_DRUGS})\b(?!\s+(?:gtt|drip))", re.I)
DRUG_RATE = re.compile(rf"\b({_DRUGS})\s+(?:at\s+|@\s*)?{_RATE}", re.I)  # a rate per time: an infusion
LINES: dict[str, str] = {  # what a note writes -> the line, tube or drain
    "piv": "PIV", "tlc": "central line", "central line": "central line", "cvl": "central line", "picc": "PICC",
    "a-line": "arterial line", "art line": "arterial line", "arterial line": "arterial line",
    "foley": "foley", "ogt": "OGT", "ngt": "NGT", "ett": "ETT", "trach": "trach", "chest tube": "chest tube",
    "jp drain": "JP drain", "rectal tube": "rectal tube", "dobhoff": "dobhoff", "hd line": "dialysis line",
    "peg": "PEG",
}
FINDINGS: dict[str, str] = {  # what a note writes -> the finding
    **{f: f for f in ("edema", "bm", "flatus", "ectopy", "pvcs", "vea", "secretions", "pain", "nausea", "vomiting",
                      "bleeding", "melena", "chest pain", "sob", "wheezes", "crackles", "rhonchi")},
    "emesis": "vomiting", "vomited": "vomiting", "cp": "chest pain",
}
NEGATE_AFTER = re.compile(r"\b(?:no|not|denies|denied|without|negative for|absent|off)\b", re.I)  # cue, then target
NEGATE_BEFORE = re.compile(r"\b(?:d/c'?d|dc'?d|discontinued|removed|pulled|out|absent|none)\b", re.I)  # target, cue
_CLAUSE = re.compile(r"[.;,:!?]\s|\band\b|\bbut\b")  # negation stops at a clause's end ...
_LIST = re.compile(r"[.;:!?]\s|\bbut\b")  # ... except across a list of findings (`denies nausea, vomiting, CP`)
_TERMINATE = re.compile(r"\b(?:to|then|now)\b", re.I)  # `off BiPAP this AM to 3L NC`: the NC is not negated
def normalise(value: str) -> str:
    """A fact value as compared: spaces dropped, lower case (`70 - 89` → `70-89`)."""
    return re.sub(r"\s+", "", value).lower()


def _terms(names: Iterable[str]) -> re.Pattern:
    alternatives = sorted(names, key=len, reverse=True)  # longest first: `chest pain` before `pain`
    return re.compile(r"(?<![\w-])(" + "|".join(re.escape(n) for n in alternatives) + r")(?![\w-])", re.I)


_LINE_TERMS, _FINDING_TERMS, _DEVICE_TERMS = _terms(LINES), _terms(FINDINGS), _terms(O2_DEVICES)
_DRUG_TERMS = _terms(MEDICATIONS)
_LIST_GLUE = re.compile(r"(?:\s|,|\bor\b|\band\b)*")
_NOT_FLOW = re.compile(r"\b(?:diuresed|bolus|UO|urine|output|negative|positive|net|even|out)\s*$", re.I)


def _negated(text: str, start: int, end: int, terms: re.Pattern | None = None) -> bool:
    """Whether a cue negates the target at text[start:end] (NegEx/ConText-style scope): a cue before it in its
    clause with no `to`/`then`/`now` between them, or a cue after it (`d/c'd`) in its clause; with `terms`, also a
    cue before a list of those terms that the target ends (`denies nausea, vomiting, chest pain`)."""
    clause_start = max((m.end() for m in _CLAUSE.finditer(text, 0, start)), default=0)
    cues = list(NEGATE_AFTER.finditer(text, clause_start, start))
    if cues and not _TERMINATE.search(text, cues[-1].end(), start):
        return True
    if terms is not None:
        list_start = max((m.end() for m in _LIST.finditer(text, 0, start)), default=0)
        cues = list(NEGATE_AFTER.finditer(text, list_start, start))
        between = terms.sub("", text[cues[-1].end():start]) if cues else ""
        if cues and _LIST_GLUE.fullmatch(between):
            return True
    after = _CLAUSE.search(text, end)
    return bool(NEGATE_BEFORE.search(text, end, after.start() if after else len(text)))


def _last_drug(text: str, before: int) -> str | None:
    """The drug named last before `before` (a MEDICATIONS term or a word before gtt/drip), lower-cased."""
    named = [(m.start(), m.group(1).lower()) for m in _DRUG_TERMS.finditer(text, 0, before)]
    named += [(m.start(), m.group(1).lower()) for m in DRIP.finditer(text, 0, before)
              if m.group(1).lower() not in NOT_DRUGS]
    return max(named)[1] if named else None


def _rate(m: re.Match, first: int) -> str:
    return f" {normalise(m.group(first) + m.group(first + 1))}" if m.group(first) else ""


def _drips(text: str) -> set[Fact]:
    """Drips: `<drug> gtt|drip|infusion [at] <rate>` (a drug named before the word, when the word before gtt is
    none: `then gtt`), a MEDICATIONS drug at a rate per time (`levophed 0.08 mcg/kg/min`), a new rate of the drip
    named last (`titrated to 150 mcg/min`), and stopped drips as `no <drug>` (`gtt off`, `titrated off`, `on hold`;
    a drug without gtt only when titrated/weaned/turned off)."""
    facts: set[Fact] = set()
    for m in DRIP.finditer(text):
        drug = m.group(1).lower()
        drug = _last_drug(text, m.start()) if drug in NOT_DRUGS else drug
        if drug:
            off = DRIP_OFF.match(text, m.end(1))
            facts.add(("drip", f"no {drug}" if off else drug + _rate(m, 2)))
    for m in DRUG_RATE.finditer(text):
        if not m.group(3).lower().endswith(("ml/hr", "cc/hr")):  # a fluid at so many cc/hr is maintenance fluid
            facts.add(("drip", m.group(1).lower() + _rate(m, 2)))
    for m in _DRUG_TERMS.finditer(text):
        if re.match(r"\s+(?:was\s+)?(?:titrated|weaned|turned)\s+off\b", text[m.end():], re.I):
            facts.add(("drip", f"no {m.group(1).lower()}"))
    for m in DRIP_CHANGE.finditer(text):
        if drug := _last_drug(text, m.start()):
            facts.add(("drip", drug + _rate(m, 1)))
    return facts


def _oxygen(text: str) -> set[Fact]:
    """The O2 device (not negated), room air when oxygen is no longer given, the flow and the FiO2."""
    facts = {("O2 device", O2_DEVICES[m.group(1).lower()]) for m in _DEVICE_TERMS.finditer(text)
             if not _negated(text, m.start(), m.end())}
    facts.update(("O2 device", "RA") for _ in ROOM_AIR.finditer(text))
    facts.update(("O2 flow", normalise(m.group(1)) + "l") for m in O2_FLOW.finditer(text)
                 if not _NOT_FLOW.search(text, 0, m.start()))  # `diuresed 1L.` is no oxygen flow
    facts.update(("FiO2", next(g for g in m.groups() if g) + "%") for m in FIO2.finditer(text))
    return facts


@functools.lru_cache(maxsize=4096)  # evaluate extracts each reference and chart once per system, then again for the totals
def extract(text: str) -> frozenset[Fact]:
    """The facts `text` states (see the module's docstring for what is found and what is missed)."""
    facts: set[Fact] = set()
    for kind, pattern in VITALS.items():
        facts.update((kind, normalise(next(g for g in m.groups() if g))) for m in pattern.finditer(text))
    facts |= _oxygen(text) | _drips(text)
    facts.update(("medication", f"{m.group(1).lower()} {normalise(m.group(2) + m.group(3))}") for m in MED_DOSE.finditer(text))
    facts.update(("medication", f"{m.group(3).lower()} {normalise(m.group(1) + m.group(2))}")
                 for m in MED_DOSE_FIRST.finditer(text))
    for kind, pattern, names in (("line", _LINE_TERMS, LINES), ("finding", _FINDING_TERMS, FINDINGS)):
        for m in pattern.finditer(text):
            if re.match(r"\s*:(?!\d)", text[m.end():]) or (kind == "line" and re.match(r"\s+mask", text[m.end():])):
                continue  # a section header (`Pain:`), or the trach mask (oxygen, not the trach)
            name = names[m.group(1).lower()]
            negated = _negated(text, m.start(), m.end(), pattern if kind == "finding" else None)
            facts.add((kind, f"no {name}" if negated else name))
    return frozenset(facts)


def _subject(fact: Fact) -> str:
    """What a fact is about, so that two values of it contradict each other: the kind for a vital sign or
    oxygen, the drug for a drip or medication, the line or finding whatever its negation."""
    kind, value = fact
    value = value.removeprefix("no ")
    if kind in ("drip", "medication"):
        return f"{kind}:{value.split()[0]}"
    if kind in ("line", "finding"):
        return f"{kind}:{value}"
    return kind


NUMERIC = frozenset({"BP", "SBP", "HR", "RR", "SpO2", "temp", "O2 flow", "FiO2"})  # values read as numbers
_SPAN = re.compile(r"(\d+(?:\.\d+)?)(s?)(?:-(\d+(?:\.\d+)?)(s?))?")


def _span(part: str) -> tuple[float, float] | None:
    """The numbers a written value covers: `88` → 88–88, `70s` → 70–79, `70-89` → 70–89, `60-70s` → 60–79,
    `120s-140s` → 120–149; None for anything else."""
    m = _SPAN.fullmatch(part.rstrip("%l").replace("'", ""))
    if not m:
        return None
    low, high, decade = float(m[1]), float(m[3] or m[1]), m[4] if m[3] else m[2]
    return low, high + (9 if decade else 0)


def consistent(kind: str, a: str, b: str) -> bool:
    """Whether two values of one subject agree as a clinician reads them: the same text, or, for a numeric kind
    (NUMERIC), spans that overlap part by part (`HR 88` and `HR 70-89`, `HR 75` and `HR 70s`, `BP 124/68` and
    `BP 110s-130s/60s`): a value inside a stated range or decade is no contradiction."""
    if a == b:
        return True
    if kind not in NUMERIC:
        return False
    pa, pb = a.split("/"), b.split("/")
    spans = [(_span(x), _span(y)) for x, y in zip(pa, pb)]
    return len(pa) == len(pb) and all(x and y and x[0] <= y[1] and y[0] <= x[1] for x, y in spans)


def _stated(fact: Fact, facts: frozenset[Fact]) -> bool:
    return any(f[0] == fact[0] and _subject(f) == _subject(fact) and consistent(f[0], fact[1], f[1]) for f in facts)


@dataclass(frozen=True)
class Fidelity:
    """How many facts a completion wrote, and how many of them fell in each of names.FACT_CLASSES."""

    written: int
    matched: int
    contradicted: int
    carried: int
    new_value: int
    unsupported: int
    unsupported_negative: int

    @property
    def errors(self) -> int:
        """The facts that are wrong or stated by nobody: names.FACT_RATES' fact_error_rate classes."""
        return sum(getattr(self, c) for c in FACT_RATES["fact_error_rate"])


def classify(written: frozenset[Fact], reference: frozenset[Fact], chart: frozenset[Fact]) -> Fidelity:
    """Sort the `written` facts, values compared as `consistent` reads them: matched (the reference states it),
    contradicted (the reference states the same subject otherwise), carried (the reference is silent on it and the
    chart states it), new_value (the chart states the subject otherwise), unsupported (nobody mentions the
    subject) or unsupported_negative (the same, for a negated line, finding or a stopped drip: `no edema`)."""
    subjects = {_subject(f) for f in reference}
    chart_subjects = {_subject(f) for f in chart}
    counts = dict.fromkeys(FACT_CLASSES, 0)
    for fact in written:
        kind = ("matched" if _stated(fact, reference) else "contradicted" if _subject(fact) in subjects
                else "carried" if _stated(fact, chart) else "new_value" if _subject(fact) in chart_subjects
                else "unsupported_negative" if fact[1].startswith("no ") else "unsupported")
        counts[kind] += 1
    return Fidelity(len(written), **counts)
