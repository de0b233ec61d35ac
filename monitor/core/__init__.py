"""The pure core: values, identifiers, the clock, diffing. No I/O."""
