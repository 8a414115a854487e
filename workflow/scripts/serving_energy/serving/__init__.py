"""One measured run: the model server, the process that starts it, the client, the protocol of
phases, the run's settings, where its files go and whether it is valid."""
