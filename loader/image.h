/* image.h - the flashable packed image .elimg (internal): the byte-exact on-disk layout
 * (docs/FORMAT.md is the specification), its validating parsers, and the pack, load,
 * verify and flash operations.
 *
 * Trust rule: nothing from an image is used before its CRC32C checks out and every field
 * has been validated (sizes overflow-checked, regions inside the image and disjoint). The
 * parsers work on bytes in memory so the fuzz target calls them directly. */
#ifndef EL_IMAGE_H
#define EL_IMAGE_H

#include "loader/model_impl.h"

#define EL_IMG_MAGIC "ELIMG\0\r\n"          /* 8 bytes at offset 0 */
#define EL_IMG_MAGIC_LEN 8u
#define EL_IMG_HEADER_SIZE 128u
#define EL_IMG_VERSION_MAJOR 1u
#define EL_IMG_VERSION_MINOR 0u
#define EL_IMG_ENTRY_SIZE 32u                /* bytes per chunk table entry */
#define EL_IMG_ALIGN 4096u                   /* payload_offset and every chunk */
#define EL_IMG_CHUNK_MIN (64u * 1024u)
#define EL_IMG_CHUNK_MAX (1u << 30)
#define EL_IMG_CHUNKS_MAX (1u << 24)         /* chunks per image */
#define EL_IMG_MANIFEST_MAX (64u * 1024u * 1024u)
#define EL_IMG_SIDE_MAX (64u * 1024u * 1024u) /* bytes per side file */
#define EL_IMG_SIDE_FILES_MAX 16u
#define EL_IMG_DECODE_THREADS_MAX 4u          /* decode workers a load uses at most */

typedef enum el_img_codec {
    EL_IMG_CODEC_NONE = 0,
    EL_IMG_CODEC_LZ4 = 1,
    EL_IMG_CODEC_SHUFFLE_LZ4 = 2,
    EL_IMG_CODEC_COUNT
} el_img_codec;

const char *el_img_codec_name(el_img_codec c);           /* "none", "lz4", "shuffle-lz4" */
el_status el_img_codec_parse(const char *s, el_img_codec *out); /* EL_E_USAGE if unknown */

/* The fixed header, decoded (all fields little-endian on disk, offsets relative to the
 * image's first byte). */
typedef struct el_img_header {
    uint16_t version_major, version_minor;
    uint32_t flags;
    uint32_t header_size;       /* 128 */
    uint32_t chunk_count;
    uint64_t manifest_offset, manifest_size;
    uint64_t table_offset;      /* chunk table: chunk_count * 32 bytes */
    uint64_t payload_offset;    /* first chunk, 4 KiB aligned */
    uint64_t payload_size;      /* uncompressed payload = the weights region's used bytes */
    uint64_t chunk_size;        /* raw bytes per chunk (the last may be shorter) */
    uint64_t image_size;        /* bytes of the whole image */
    uint32_t manifest_crc, table_crc, header_crc;
} el_img_header;

/* One chunk table entry, decoded. */
typedef struct el_img_chunk {
    uint64_t offset;            /* of the stored bytes, from the image start */
    uint32_t stored_size;       /* bytes on disk */
    uint32_t raw_size;          /* bytes once decoded */
    uint8_t codec;              /* el_img_codec */
    uint8_t elem_size;          /* byte-shuffle element size (1, 2, 4, 8); 0 unless shuffled */
    uint32_t crc_stored;        /* CRC32C of the stored bytes */
    uint32_t crc_raw;           /* CRC32C of the decoded bytes */
} el_img_chunk;

/* A file stored inside the image (tokenizer.json, vocab.txt, ...). */
typedef struct el_img_side {
    char name[64];
    uint64_t offset, size;
    uint32_t crc;
} el_img_side;

/* Everything the manifest says, typed. Owned heap memory; free with el_img_meta_free. */
typedef struct el_img_meta {
    el_img_header h;
    el_img_chunk *chunks;       /* h.chunk_count */
    el_tensor_table tensors;    /* payload order; offset = arena_offset = payload offset,
                                   dtype = loaded_dtype = as placed */
    char *config_json;          /* the model config as JSON text (NULL if none) */
    uint32_t model_flags;       /* EL_MODEL_* */
    char source_format[32];     /* "safetensors", "llama2c", ... */
    char producer[64];
    char pack_codec[16];        /* codec asked for at pack time */
    char pack_dtype[16];        /* "as-stored", "F16", ... */
    uint64_t plan_total;        /* arena bytes at pack time (informational) */
    el_img_side side[EL_IMG_SIDE_FILES_MAX];
    uint32_t side_count;
} el_img_meta;

/* Header: checks magic, header CRC, version (major must match; a newer minor is read),
 * flags (no unknown bit), reserved bytes zero, every size/offset/alignment and that the
 * regions are disjoint and end within image_size <= avail (the bytes from the image start
 * to the end of its file). EL_E_INVALID/EL_E_UNSUPPORTED naming the field. */
el_status el_img_header_parse(const uint8_t raw[EL_IMG_HEADER_SIZE], uint64_t avail,
                              const char *name, el_img_header *out);
/* Chunk table (h->chunk_count * 32 bytes, CRC already unchecked): CRC, then each entry:
 * raw size as the header implies, known codec, stored size in 1..raw (== raw for none),
 * element size, reserved zero, 4 KiB-aligned offsets in order and not overlapping, inside
 * the payload area. out has h->chunk_count entries. */
el_status el_img_table_parse(const uint8_t *tbl, size_t len, const el_img_header *h,
                             const char *name, el_img_chunk *out);
/* Manifest (CRC checked here too): JSON (depth-capped), schema of docs/FORMAT.md, tensor
 * records laid out by the weights layout rule and ending exactly at payload_size, side
 * files inside the image and disjoint. Fills everything of out but h and chunks. */
el_status el_img_manifest_parse(const char *json, size_t len, const el_img_header *h,
                                const char *name, el_img_meta *out);
/* All three from a whole image in memory (the fuzz target; tests). */
el_status el_img_meta_parse_memory(const uint8_t *img, size_t len, const char *name,
                                   el_img_meta *out);
/* All three from a file, the image starting at base. */
el_status el_img_meta_read(el_file *f, uint64_t base, el_img_meta *out);
void el_img_meta_free(el_img_meta *m); /* zeroed or NULL is fine */

/* True if the 8 bytes are the image magic. */
bool el_img_magic_ok(const uint8_t head[EL_IMG_MAGIC_LEN]);

/* "chunk 3 (stored at image offset 0x5000, 4096 bytes; payload 196608..262144; tensors
 * a, b, ...)" into buf: the location part of every chunk message. tensors: the image's
 * table (m->tensors, or the model's once the image is opened as one). */
const char *el_img_chunk_where(const el_img_meta *m, const el_tensor_table *tensors,
                               uint32_t ci, char *buf, size_t cap);

/* Decodes chunk c: checks the CRC of stored (stored_size bytes), decodes into dst
 * (raw_size bytes) and checks the raw CRC. scratch: at least raw_size bytes, may be the
 * stored buffer itself (it is reused after LZ4 decoding). Returns 0 ok, 1 stored CRC
 * mismatch, 2 LZ4 error, 3 raw CRC mismatch (no message: callers may be worker threads). */
int el_img_decode(const el_img_chunk *c, const uint8_t *stored, uint8_t *dst, uint8_t *scratch);
/* Byte-shuffle: n bytes, elem-byte elements split into planes (the tail n % elem bytes
 * stays in place at the end); unshuffle is the inverse. src and dst do not overlap. */
void el_img_shuffle(const uint8_t *src, uint8_t *dst, size_t n, unsigned elem);
void el_img_unshuffle(const uint8_t *src, uint8_t *dst, size_t n, unsigned elem);

/* ---- the model side --------------------------------------------------------------------- */

/* The image state an el_model opened from an image carries (m->image). */
typedef struct el_image {
    el_img_meta meta;
    uint64_t base;              /* image start inside files[0] */
    struct el_gguf *tok_gguf;   /* the stored tokenizer.gguf (a GGUF source's tokenizer
                                   metadata), parsed at open; NULL if none */
    struct {                    /* its bytes in files[0]: tok_gguf reads through this */
        el_file *f;
        uint64_t off, size;
        char name[1100];        /* for messages */
    } tok_src;
} el_image;

/* With files[0] open and the magic seen at base: reads and validates everything, fills
 * m->tensors, m->config, m->flags, m->format (the source's format), m->image, and the side
 * files (each CRC-checked; read in place later, through windows onto the image). */
el_status el_image_open(el_model *m, uint64_t base);
void el_image_close(el_model *m);
/* el_model_side_file for images. */
bool el_image_side_file(const el_model *m, const char *name, char *path, size_t cap);
/* Plan hook: rejects a dtype that would convert (the payload is placed as packed), sizes
 * staging for the largest stored chunk and the decode workers, read_bytes = stored bytes. */
el_status el_image_plan(const el_model *m, el_plan *p);
/* Decode workers a load uses (online CPUs capped at EL_IMG_DECODE_THREADS_MAX and at the
 * chunk count) and the bytes of one staging slot (the largest encoded chunk's raw size, page
 * rounded; 0 when every chunk is stored plain and read straight into place). Staging is
 * 2 * threads * slot (double-buffered batches of `threads` chunks). */
void el_image_staging(const el_img_meta *m, unsigned *threads, uint64_t *slot_bytes);
/* el_model_load for images (loader/image_load.c). */
el_status el_image_load(el_model *m, const el_plan *plan, el_arena *a,
                        const el_load_params *params, el_load_stats *stats);

/* ---- tools ------------------------------------------------------------------------------- */

typedef struct el_image_pack_params {
    el_dtype dtype;             /* EL_DT_NONE = as stored */
    el_img_codec codec;
    uint64_t chunk_bytes;       /* 0 = 1 MiB */
    const char *tokenizer_path; /* as el_model_open_params */
    uint64_t src_offset;        /* source is an image at this offset (repack) */
    bool write_through;         /* out may be a device, FIFO or symlink: write into it */
} el_image_pack_params;

typedef struct el_image_pack_stats {
    uint64_t raw_bytes[EL_DT_COUNT];    /* payload bytes per dominant dtype of chunks */
    uint64_t stored_bytes[EL_DT_COUNT];
    uint64_t raw_total, stored_total;   /* payload */
    uint64_t image_bytes;
    uint32_t chunks, chunks_by_codec[EL_IMG_CODEC_COUNT];
} el_image_pack_stats;

/* Packs the model at src into out: an unnamed temporary file (O_TMPFILE) in out's folder,
 * fsync, linked under a temporary name, renamed over out, fsync of the folder. On any
 * failure out is untouched and no temporary file is left (a crash leaves at most a named
 * `.OUT.tmp.XXXXXX`, between link and rename or where O_TMPFILE is unsupported; the next
 * pack to the same out removes the ones no live pack holds). out must be absent or a
 * regular file: a device, FIFO or symlink is refused (EL_E_USAGE) unless write_through,
 * then a symlink to a regular file has its target replaced atomically, a block device is
 * written in place and a character device or FIFO gets the image streamed into it;
 * directories and sockets are always refused. Tokenizer and config files are validated
 * (EL_E_INVALID) before anything is written. */
el_status el_image_pack(const char *src, const char *out, const el_image_pack_params *p,
                        el_image_pack_stats *stats);

/* The output machinery pack uses for every format (image_pack.c): a writer fills fd (a
 * temporary file, or the device itself with write_through) and sets *size to the bytes it
 * wrote; el_pack_output_write places the result at out as el_image_pack describes
 * (temporary file, fsync, rename, fsync of the folder; refused kinds of out; nothing left
 * behind on failure). */
typedef el_status (*el_pack_writer)(void *ctx, int fd, const char *name, uint64_t *size);
el_status el_pack_output_write(const char *out, bool write_through, el_pack_writer fn, void *ctx,
                               uint64_t *size);
/* The check of out alone (before any load): EL_E_USAGE for a directory, socket, or a
 * device / FIFO / symlink without write_through. */
el_status el_pack_output_check(const char *out, bool write_through);
/* EL_E_USAGE when out is one of m's open files (the same inode). */
el_status el_pack_output_not_input(const char *out, const el_model *m);
/* Plans m for dtype and loads its weights into a fresh arena holding only the weights and
 * staging regions (*ao: the caller deinits it). */
/* Reads a whole file of at most max bytes (malloc'd, NUL-terminated; *len its size). */
el_status el_pack_read_file(const char *path, uint64_t max, uint8_t **out, size_t *len);
el_status el_pack_load_weights(el_model *m, el_dtype dtype, el_plan *plan, el_arena **ao);

typedef struct el_image_verify_report {
    uint32_t chunks;
    uint64_t stored_bytes, raw_bytes;
    uint32_t side_files;
} el_image_verify_report;

/* Checks every CRC of the image at base in path (header, table, manifest, side files, every
 * chunk stored and decoded). EL_E_INVALID naming the first bad chunk (index, offset, tensors). */
el_status el_image_verify(const char *path, uint64_t base, el_image_verify_report *r);

/* ---- A/B layout (image_ab.c; docs/FORMAT.md) -------------------------------------------- */

#define EL_IMG_AB_MAGIC "ELIMGAB\0"
#define EL_IMG_AB_HEADER_SIZE 512u   /* one header copy */
#define EL_IMG_AB_COPY_STRIDE 4096u  /* copies at 0 and 4096; slot A at 8192 */

typedef struct el_image_ab {
    uint32_t active;            /* 0 = slot A, 1 = slot B: the slot with the good image */
    uint64_t generation;        /* +1 per switch; the valid copy with the higher one counts */
    uint64_t slot_offset[2];    /* bytes from the start of the target */
    uint64_t slot_size;         /* bytes per slot (4 KiB multiple) */
    uint64_t image_size;        /* bytes of the active slot's image */
} el_image_ab;

/* If path starts with an A/B header, *offset = the active slot's offset (and *ab its
 * header); EL_OK with *offset untouched (ab zeroed) when there is none or path is not a
 * readable file; EL_E_INVALID when the magic is there but neither copy is valid. */
el_status el_image_ab_resolve(const char *path, uint64_t *offset, el_image_ab *ab);
/* Flashes img into the slot of target not in use (a fresh layout over the whole target if
 * it has no A/B header: slot A first), verified as el_image_flash does, then switches the
 * header to it. A failure at any point leaves the header naming the previous good slot. */
el_status el_image_flash_ab(const char *img, const char *target, el_image_ab *ab,
                            el_image_verify_report *r);

/* Verifies every CRC of img (EL_E_INVALID, nothing written, when one fails), writes it to
 * target at offset (aligned writes, fsync), then reads it back and verifies every CRC. Refuses (EL_E_USAGE) a target smaller than offset + image
 * and a target that is, or is a partition of a disk that holds, a mounted filesystem. */
el_status el_image_flash(const char *img, const char *target, uint64_t offset,
                         el_image_verify_report *r);
/* The mount check alone: EL_E_USAGE naming the mount point if target is mounted. */
el_status el_image_target_check_mounted(const char *target);

#endif /* EL_IMAGE_H */
