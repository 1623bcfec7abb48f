/*
 * fuzz_watch.c - libFuzzer target for the Kubernetes watch stream
 * (src/net/kube_watch.c: the JSON lines of a ?watch=1 answer) and what the
 * loop reads from each event (hl_kube_coderun_status_read). The first byte
 * sets the size of the chunks the stream arrives in (a line may be split
 * anywhere, as curl's write callback splits it); the rest is the stream.
 *
 * The stream code is static in kube_watch.c, so this file includes it: the
 * target links its own copy instead of the library's object.
 *
 * Oracle: the resourceVersion buffer only ever holds a version the stream
 * sent (the last event's that carried one that fits) or the one it started
 * with; a chunk is refused only with a reason; the counters count what the
 * callback saw.
 */
#include "fuzz.h"
#include "kube_watch.c"

struct fuzz_watch_ud {
	const char *rv; /* the watch's resourceVersion buffer */
	char prev[64];  /* its value before the event */
	size_t events;
};

static int
fuzz_watch_event(void *ud, const char *type, json_t *object)
{
	struct fuzz_watch_ud *u = ud;
	struct hl_kube_coderun_status st;

	const char *sent = hl_json_str(object, "metadata.resourceVersion");

	/* set from the event when it carries one that fits, else kept */
	if (sent && *sent && strlen(sent) < sizeof(u->prev))
		FUZZ_CHECK(strcmp(u->rv, sent) == 0);
	else
		FUZZ_CHECK(strcmp(u->rv, u->prev) == 0);
	memcpy(u->prev, u->rv, strlen(u->rv) + 1);
	hl_kube_coderun_status_read(&st, object);
	(void)hl_kube_phase_name(st.phase);
	u->events++;
	return strcmp(type, "DELETED") == 0 && st.deleting ? -1 : 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char start_rv[] = "fuzz-start";
	struct hl_kube_watch_opts o;
	struct hl_kube_watch_stats stats;
	struct fuzz_watch_ud u = { 0 };
	struct watch w;
	char rv[64];
	size_t chunk, off;

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] % 64 + 1;
	data++;
	size--;
	memset(&o, 0, sizeof(o));
	memset(&stats, 0, sizeof(stats));
	memcpy(rv, start_rv, sizeof(start_rv));
	memcpy(u.prev, start_rv, sizeof(start_rv));
	u.rv = rv;
	o.resource_version = rv;
	o.rv_size = sizeof(rv);
	o.fn = fuzz_watch_event;
	o.ud = &u;
	o.stats = &stats;
	memset(&w, 0, sizeof(w));
	w.o = &o;
	w.stats = &stats;
	w.line = (struct hl_buf)HL_BUF_INIT(WATCH_LINE_MAX);
	w.stream_err = (struct hl_err)HL_ERR_INIT;
	for (off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;

		if (watch_data(&w, (const char *)data + off, n) < 0) {
			FUZZ_CHECK(w.user_stop || w.gone || w.stream_err.msg[0] != '\0');
			break;
		}
	}
	FUZZ_CHECK(strcmp(rv, u.prev) == 0);
	FUZZ_CHECK(atomic_load(&stats.events) + atomic_load(&stats.bookmarks) == u.events);
	hl_buf_release(&w.line);
	return 0;
}
