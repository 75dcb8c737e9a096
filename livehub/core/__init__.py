"""PURE: the rules, encodings and values every layer shares. No I/O; trio only for types."""
