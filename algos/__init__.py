"""seqmarl.algos"""
