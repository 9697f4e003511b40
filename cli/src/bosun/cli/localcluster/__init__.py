"""The local cluster behind `bosunctl local` and `make up`: supervised processes under `.bosun/`."""
