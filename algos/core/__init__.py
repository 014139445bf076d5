"""seqmarl.algos.core"""
