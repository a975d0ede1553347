# connector: PGXS build of the extension. The C in src/pg is compiled by PGXS;
# the C++17 core and shim are compiled by the rules below into a static archive
# that the module links. They are deliberately not in OBJS: PGXS would then
# emit LLVM bitcode for them, and JIT inlining only ever reaches the C entry
# points, never the core behind the shim, so that bitcode would be dead weight.

EXTENSION = connector
MODULE_big = connector
OBJS = $(patsubst %.c,%.o,$(wildcard src/pg/*.c))
DATA = $(wildcard sql/install/*.sql)

# pg_regress: test/regress/sql/*.sql against test/regress/expected/*.out, run
# by `make installcheck` against the running server that PGHOST/PGPORT name,
# once the extension is installed. The destinations file also needs the Graph
# API simulator (test/graph_sim, started with
# --config test/fixtures/regress_graph_sim.json) behind connector.graph_api_url,
# and connector.key_file set; scripts/test.sh sets all of that up.
REGRESS = identifiers identifier_errors parallel_hashing server_encodings destinations
REGRESS_OPTS = --inputdir=test/regress

PG_CPPFLAGS = -Isrc/shim
# Only what PostgreSQL looks up (PG_MODULE_MAGIC, _PG_init, the fmgr entry
# points, the background workers' mains) is exported from the module.
# -MMD -MP: a C file is rebuilt when a header it includes changes (the shim's
# constants size the C side's arrays).
PG_CFLAGS = -Werror -fvisibility=hidden -MMD -MP

CORE_SOURCES = $(wildcard src/core/*.cpp src/core/*/*.cpp src/shim/*.cpp)
CORE_OBJECTS = $(CORE_SOURCES:.cpp=.o)
CORE_ARCHIVE = src/libconnector_core.a
CORE_CXXFLAGS = -std=c++17 -O2 -g -fPIC -fvisibility=hidden -MMD -MP \
	-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion -Werror \
	-Isrc/core -Isrc/shim

SHLIB_LINK = -Wl,--exclude-libs,ALL $(CORE_ARCHIVE) -lphonenumber -licuuc -lutf8proc -lcurl -lcrypto -lstdc++
EXTRA_CLEAN = $(CORE_OBJECTS) $(CORE_OBJECTS:.o=.d) $(OBJS:.o=.d) $(CORE_ARCHIVE)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# No PostgreSQL include path here, on purpose (see CMakeLists.txt).
$(CORE_OBJECTS): %.o: %.cpp
	$(CXX) $(CORE_CXXFLAGS) -c -o $@ $<

$(CORE_ARCHIVE): $(CORE_OBJECTS)
	rm -f $@
	$(AR) crs $@ $^

$(shlib): $(CORE_ARCHIVE)

-include $(CORE_OBJECTS:.o=.d) $(OBJS:.o=.d)
