"""The DynapSim model as data: parameter names and defaults, the network spec, spec files,
the mismatch model and the Philox generator its draws come from. No simulation here."""
