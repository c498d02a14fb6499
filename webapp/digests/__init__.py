"""The weekly digest: building issues, staff review, the public archive and the sending engine."""
