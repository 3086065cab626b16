"""Measuring dubs and curating benchmarks on the paper's terms (section 4.1, appendix C)."""
