"""Articles: imported from the publication's RSS/Atom feeds (or added by staff), with the
links between translations; the digest and the top reads are built from them."""
