"""The test suite, by layer: unit/, contract/, integration/, e2e/; helpers in support/.
tests/README.md says what goes where."""
