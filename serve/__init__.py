"""HTTP translation endpoint (litserve) over a seq2seq checkpoint bundle."""
