"""masscan's and zmap's command-line grammars, each parsed into one `Plan` that pyscan runs
(`pyscan masscan ARGS...`, `pyscan zmap ARGS...`)."""

from pyscan.personality.masscan import parse_masscan
from pyscan.personality.plan import NotSupportedYet, OutputPlan, Plan
from pyscan.personality.zmap import parse_zmap

__all__ = ["NotSupportedYet", "OutputPlan", "Plan", "parse_masscan", "parse_zmap"]
