# The dongle twin's variant of the unix port (mpconfigvariant.h); what is frozen is given by the
# project's Makefile (FROZEN_MANIFEST), for the twin and the stock-image twin alike.
