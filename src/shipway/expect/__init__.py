"""Expectations: what a validation case or an explained prediction should show, read and checked.

A shared helper (below the capabilities): validation suites and `shipway explain --expect` use it.
"""
