"""The filter's logic: standard library only, no I/O, no ABI, no clock (time is passed in)."""
