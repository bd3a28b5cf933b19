"""Small pieces of the grounded brain's dialogue policy, one job per module: reading a caller's
digits, corrections ("... instead"), and the moments a reply must not push towards an order."""
