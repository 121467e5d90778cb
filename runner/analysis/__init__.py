"""Numbers from simulations, by level: per neuron (`neuron_metrics`), per instance
(`instance_metrics`), per chip and sweep point (`chip_statistics`); readouts that score a
task, and the calibration objective."""
