"""Entry/exit rules, sizing and costs, combined into one backtrader Strategy.

``strategies`` never imports ``riskon``: it receives aligned frames and plain parameters.
"""
