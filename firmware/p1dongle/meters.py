# Meter profiles: what the `meter` setting means. A profile sets the UART framing the meter's
# customer port uses and how its data-notifications are laid out; the frame assembler recognises
# every framing anyway (DB, DSMR, M-Bus, HDLC), so `auto` works wherever the UART settings fit.
# Settings in "uart" still win over the profile's.
#
#   name: (baud, bits, parity, stop, layout, what it is)
PROFILES = {
    "auto": (115200, 8, None, 1, "auto", "any P1 meter at 115200 8N1; framing and layout detected"),
    "lux": (115200, 8, None, 1, "auto", "Luxembourg Smarty, Sagemcom T210-D: DB frames on P1"),
    "steiermark": (115200, 8, None, 1, "auto",
                   "Energie Steiermark, Sagemcom T210-D-R: DB frames on P1; encryption key only "
                   '(set "auth_key": "none")'),
    "netznoe": (2400, 8, "even", 1, "obis", "Netz NOE (EVN), Kaifa MA309 / Sagemcom T210-D: M-Bus, 0x20"),
    "tinetz": (2400, 8, "even", 1, "obis", "TINETZ, Kaifa MA309: M-Bus"),
    "ikb": (2400, 8, "even", 1, "obis", "IKB Innsbruck, Kaifa MA309 / Sagemcom: M-Bus"),
    "salzburg": (2400, 8, "even", 1, "obis", "Salzburg Netz, Kaifa MA309 / Sagemcom T210-D: M-Bus"),
    "vkw": (2400, 8, "even", 1, "obis", "Vorarlberg (VKW), Kaifa MA309: M-Bus"),
    "wienernetze": (115200, 8, None, 1, "compact", "Wiener Netze, Siemens IM350 / Iskra AM550: HDLC"),
    "linz": (115200, 8, None, 1, "auto", "Linz Netz, Siemens IM350 / L+G E450: HDLC"),
    "wels": (115200, 8, None, 1, "auto", "eww Wels, Siemens IM350: HDLC, structure(10)"),
    "kaernten": (115200, 8, None, 1, "auto", "Kaernten Netz, Iskra AM550 / Siemens IM350: HDLC, structure(12)"),
    "kamstrup": (2400, 8, None, 1, "kamstrup",
                 "Kamstrup Omnipower HAN (NO, SE, DK, CH): no energy registers until the country is set"),
    "kamstrup-no": (2400, 8, None, 1, "kamstrup-no", "Kamstrup Omnipower HAN, Norway: energy in 10 Wh"),
    "kamstrup-se": (2400, 8, None, 1, "kamstrup-se", "Kamstrup Omnipower HAN, Sweden: energy in Wh"),
    "kamstrup-dk": (2400, 8, None, 1, "kamstrup-dk", "Kamstrup Omnipower HAN, Denmark: energy registers not published (their scaler is the meter's configuration)"),
    "aidon": (2400, 8, "even", 1, "obis", "Aidon 65xx HAN, Norway"),
    "aidon-se": (115200, 8, None, 1, "obis", "Aidon 65xx RJ12/RJ45 HAN, Sweden"),
    "kaifa": (2400, 8, "even", 1, "kaifa", "Kaifa MA304 / MA105 HAN (KFM_001), Norway and Sweden"),
    "landisgyr-e450": (2400, 8, "even", 1, "landisgyr-e450", "Landis+Gyr E450 customer interface (CH, AT)"),
    "landisgyr-e570": (2400, 8, "even", 1, "landisgyr-e570", "Landis+Gyr E570 (current transformers), Switzerland"),
    "landisgyr-e360": (9600, 8, None, 1, "landisgyr-e360", "Landis+Gyr E360 customer interface, Switzerland"),
    "iskra-am550": (115200, 8, None, 1, "iskra-am550", "Iskra AM550 customer interface, Switzerland"),
    "sweden": (115200, 8, None, 1, "auto", "Swedish P1 / HAN on RJ12 or RJ45 at 115200 8N1 (DSMR telegrams)"),
}


def profile(name):
    return PROFILES.get(name)


def names():
    return sorted(PROFILES)
