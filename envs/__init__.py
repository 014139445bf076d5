"""seqmarl.envs"""
