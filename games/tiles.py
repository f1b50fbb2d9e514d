"""The tile vocabulary shared by every game.

A map cell holds one *tile code* (uint8). The low 7 bits name the tile (floor,
wall, a chest, a coin of some colour, ...); bit 7 (``PLAYER``) is set where a
player stands. Observations turn codes into one-hot channels through
``CHANNELS_OF_CODE``, a lookup table over all 256 codes, so that every game
speaks the same observation language and one network can play them all.

Channels (last axis of an observation window):

==  ============  ==============================================================
 0  floor         walkable and empty
 1  wall          blocks movement; also everything outside the map
 2  chest         a closed chest (``treasure``)
 3  chest_open    an opened, empty chest (``treasure``)
 4  coin_red      a coin of the first colour (``coinrush``)
 5  coin_green    a coin of the second colour (``coinrush``)
 6  coin_blue     a coin of the third colour (``coinrush``)
 7  exit          the exit of a level (``rules``)
 8  object_a      first rule object (``rules``)
 9  object_b      second rule object (``rules``)
10  object_c      third rule object (``rules``)
11  boost         a boost tile (``cycles``)
12  trap          a trap tile (``cycles``)
13  wind          a wind tile (``drift``)
14  trail         a light trail (``cycles``)
15  player        another player (the observer itself is always the centre)
==  ============  ==============================================================
"""

from __future__ import annotations

import numpy as np

FLOOR, WALL, CHEST, CHEST_OPEN, COIN_RED, COIN_GREEN, COIN_BLUE, EXIT = range(8)
OBJECT_A, OBJECT_B, OBJECT_C, BOOST, TRAP, WIND, TRAIL = range(8, 15)
PLAYER = 0x80  # bit set on a cell's code where a player stands
TILE_MASK = 0x7F

CHANNEL_NAMES = (
    "floor", "wall", "chest", "chest_open", "coin_red", "coin_green", "coin_blue", "exit",
    "object_a", "object_b", "object_c", "boost", "trap", "wind", "trail", "player",
)
NUM_CHANNELS = len(CHANNEL_NAMES)
NUM_TILES = NUM_CHANNELS - 1  # every channel but "player" is a tile

COINS = (COIN_RED, COIN_GREEN, COIN_BLUE)


def _channels_of_code() -> np.ndarray:
    """(256, NUM_CHANNELS) uint8: the one-hot channels of every cell code."""
    table = np.zeros((256, NUM_CHANNELS), dtype=np.uint8)
    for code in range(256):
        tile = code & TILE_MASK
        table[code, tile if tile < NUM_TILES else WALL] = 1
        if code & PLAYER:
            table[code, NUM_CHANNELS - 1] = 1
    table.setflags(write=False)
    return table


CHANNELS_OF_CODE = _channels_of_code()
