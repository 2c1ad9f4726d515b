import PBTWaveCommands

PBTWave.main()
