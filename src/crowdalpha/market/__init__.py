"""Market panels: the contract, validation, loaders, synthetic and sample markets, price-derived
features, risk-factor exposures and forward residual targets. Pure: no I/O beyond explicit
reader and writer functions."""
