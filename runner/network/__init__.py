"""The public network object: `DynapSimNetwork` (a spec plus its mismatch, simulated through a
backend), batches of several networks, and the exchange with Rockpool."""
