"""Reading raw CSV/Parquet input against a dataset spec: the rules preprocess and score share.

``sources`` finds input files and cuts them into units, ``validate`` checks each file's header
and first rows before any work starts, ``parse`` turns a block of bytes or a Parquet table into
typed columns plus the rejected rows (needs the ``dask`` extra: pyarrow and pandas), ``read``
reads one unit into parsed blocks.
"""
