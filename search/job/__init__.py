"""The whole job in the user's time: the plan (plan.py) and its phases run in order (whole.py)."""
