# What the values of a data-notification (axdr.py) are: the value layouts of the meter families,
# one module each, as its vendor's or utility's document describes it, read into readings
# (reading.py). A family module has
#   NAMES               the meter profiles' layouts it reads (meters.py: "kaifa", "kamstrup-no"...)
#   claim(reader, body, items)   "is this push yours?": the layout to read it with, or None
#                       (or LayoutError: a push that must give no telegram, said in one line)
#   read(reader, body, layout)   its readings, through reader.number / string / say
# and FAMILIES asks them in order; the first that claims a push reads it. A new family is a
# module and one line in FAMILIES.
#
# Never a guess: a value is read only when the push says its scaler and unit, or a family's
# document does; a push whose layout is none of these gives LayoutError and one line saying what
# it looked like and what would help.
from .. import obis
from ..axdr import INT, STR, describe
from ..reading import misfit
from . import burgenland, capture_objects, compact, kaifa, kamstrup, object_lists, obis_pairs, structure12, xt211
from .common import LayoutError, iso_time, items_of, named, scaled, text

FAMILIES = (
    capture_objects,    # {class, OBIS, attribute, index} list, then the values: L+G, Swiss AM550
    object_lists,       # a push-object list alone: a description, never values (no telegram)
    xt211,              # {untagged descriptor, value} objects: Sagemcom XT211, Czechia
    kamstrup,           # "Kamstrup_V...", OBIS code-value pairs
    kaifa,              # "KFM_001", positional lists; list 1 once Kaifa is known
    structure12,        # 0-6:25.9.0 structure(12 / 10): Kaernten Netz, eww Wels
    burgenland,         # 14 (11) numbers and the meter id: Netz Burgenland's E450
    obis_pairs,         # OBIS codes in the push, scaler-units when it gives them
    compact,            # 6 or 8 numbers and a time: Wiener Netze IM350
)
LAYOUTS = ("auto",)
for _family in FAMILIES:
    LAYOUTS += _family.NAMES

__all__ = ["FAMILIES", "LAYOUTS", "LayoutError", "Layouts", "iso_time"]


class Layouts:
    """Reads one meter's data-notifications. layout: the meter profile's (meters.py), or "auto"
    to tell the layout by its shape. After each push, `notice` is a line to report (a value the
    push gave without its unit, said once per code), or None."""

    def __init__(self, layout="auto"):
        self.layout = layout
        self.kaifa = layout == "kaifa"  # Kaifa's list 1 has no name: known from a list 2/3 or the profile
        self.clock = None
        self.notice = None
        self._noticed = []  # type: list

    def readings(self, note):
        """(readings, 12-byte clock or None) of a Notification. Raises LayoutError."""
        self.notice = None
        body = note.body
        self.clock = note.clock
        family, layout = self._family(body)
        out = family.read(self, body, layout)
        stamp = iso_time(self.clock)
        if stamp and not named(out, "powerTs"):
            out.insert(0, (obis.row("0-0:1.0.0"), stamp))
        return out, self.clock

    def _family(self, body):
        items = items_of(body)
        for family in FAMILIES:
            layout = family.claim(self, body, items)
            if layout is not None:
                return family, layout
        raise LayoutError("unknown value layout: %s (a meter profile may say it: meter %s; or send a capture "
                          "of it so that it can be read)" % (describe(body), _profile_hint(body)))

    # -- what the families read with ---------------------------------------------------------

    def string(self, out, row, raw):
        if len(raw) == 12 and row[obis.KIND] == obis.TIME:
            self.clock = raw                # the meter's clock: better than the header's
            out.append((row, iso_time(raw) or text(raw)))
        else:
            out.append((row, text(raw)))

    def number(self, out, row, mantissa, scaler, unit):
        """Add the reading mantissa * 10**scaler in DLMS unit `unit` (in DSMR's: Wh as kWh...) to
        out, unless it cannot be the number the meter has (reading.misfit: what a wrong scaler
        makes): then it is left out, and one line says so."""
        value = scaled(mantissa, scaler, unit)
        why = misfit(row, value)
        if why is None:
            out.append((row, value))
        else:
            self.say("%s not published: %s (scaler %d)" % (row[obis.CODE], why, scaler))

    def unscaled(self, row):
        self.say("%s: the push gives no scaler or unit for it, and none is documented for this meter: "
                 "not published" % row[obis.CODE])

    def say(self, line):
        # once per line, for as long as the dongle runs (a push repeats every few seconds)
        if line not in self._noticed and len(self._noticed) < 16:
            self._noticed.append(line)
            self.notice = line if self.notice is None else self.notice + "; " + line


def _profile_hint(body):
    items = items_of(body) or []
    if len(items) == 1 and items[0][0] == INT:
        return "kaifa (a Kaifa list 1 carries only its power)"
    if items and items[0][0] == STR and items[0][1][:3] == b"ISK":
        # Slovenia's utilities configure Iskraemeco AM550 pushes without OBIS codes (18, 12, 10
        # or 9 values); what each value is and its unit is in no published document
        return ("auto; an Iskraemeco push without OBIS codes, as Slovenian utilities configure them: no "
                "published document says what its values are and their units; your utility's description "
                "of the HAN push would let it be read")
    return "auto (no profile reads this one yet)"
