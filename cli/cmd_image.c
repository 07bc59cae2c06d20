/* cmd_image.c - the image commands: pack (a model into a flashable .elimg), verify (every
 * CRC of an image), flash (an image onto a device, partition or file, then verify it), and
 * the image part of `inspect` (header, codec statistics, chunks). */
#include "cli/cli.h"

#include "loader/formats/gguf_write.h"
#include "loader/image.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int help_or_flag(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

static void print_ratio(const char *what, uint64_t raw, uint64_t stored) {
    char a[32], b[32];
    printf("  %-8s %12s -> %12s  ratio %.3f (%.1f%% of raw)\n", what,
           el_size_format(raw, a, sizeof a), el_size_format(stored, b, sizeof b),
           stored ? (double)raw / (double)stored : 0.0, raw ? 100.0 * (double)stored / (double)raw : 0.0);
}

/* pack -o X.gguf. */
static int pack_gguf(const el_cli_opts *o, const char *out, bool through) {
    el_gguf_write_params p = {.dtype = o->plan.dtype, .tokenizer_path = o->tokenizer,
                              .src_offset = o->offset, .write_through = through};
    el_gguf_write_stats st;
    el_status s = el_gguf_write(o->model, out, &p, &st);
    if (s != EL_OK) return el_cli_fail(s);
    char a[32], b[32], c[32];
    printf("packed %s -> %s (GGUF v3, %s: %s header, %u metadata entries, %u tensors, %s)\n",
           o->model, out, el_size_format(st.file_bytes, a, sizeof a),
           el_size_format(st.header_bytes, b, sizeof b), st.kv, st.tensors, st.arch);
    printf("tokenizer %s; dtype %s: %u matrices quantized, %u kept as stored; tensor buffers %s\n",
           st.tokenizer, o->plan.dtype == EL_DT_NONE ? "as stored" : el_dtype_name(o->plan.dtype),
           st.quantized, st.kept, el_size_format(st.buffer_bytes, c, sizeof c));
    return 0;
}

int el_cmd_pack(int argc, char **argv) {
    static const char *help =
        "usage: edgeload pack MODEL -o OUT.elimg [--dtype f16] [--codec none|lz4|shuffle-lz4] [--chunk 1M]\n"
        "                         [--write-through]\n"
        "       edgeload pack MODEL -o OUT.gguf [--dtype f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1]\n"
        "                         [--write-through]\n"
        "The format follows OUT's extension (.gguf: GGUF, anything else: an image) unless\n"
        "--format gguf|elimg says.\n"
        "Image: packs a model (HF folder, .safetensors, GGUF, llama2.c checkpoint, or an image)\n"
        "into one flashable image: weights placed as the arena holds them, in CRC32C-checked\n"
        "chunks, with config and tokenizer files inside. Tokenizer and config files are\n"
        "validated first (a corrupt one: exit 2). Default codec shuffle-lz4, chunk 1M.\n"
        "GGUF: a v3 file llama.cpp loads, from the same sources (architectures llama, mistral as\n"
        "llama, qwen2, gemma3, phi3, gpt2): llama.cpp's tensor names and layouts (llama q/k rows\n"
        "in pair order, Gemma norms as 1 + w, GPT-2 Conv1D weights as rows), hyperparameters,\n"
        "the tokenizer from tokenizer.json (byte-level BPE as gpt2 with its pre-tokenizer named,\n"
        "SentencePiece-style BPE as llama; a GGUF source's copied) and the chat template.\n"
        "--dtype converts or quantizes while streaming: matrices whose rows are whole blocks\n"
        "quantize, other matrices stay as stored, 1-D tensors (norms, biases) are F32. Memory:\n"
        "the header plus one row group (~4 MiB of f32 per buffer). What GGUF or llama.cpp\n"
        "cannot express is refused by name (exit 2).\n"
        "Both are written atomically (temporary file, fsync, rename, fsync of the folder); a\n"
        "killed pack leaves no temporary file behind (or one the next pack to the same OUT\n"
        "removes). OUT must be absent or a regular file other than the model's own: a device,\n"
        "FIFO or symbolic link is refused (exit 1) unless --write-through is given; then a\n"
        "link's target is replaced atomically, a block device is written in place (refused\n"
        "while mounted) and a character device or FIFO gets the finished file streamed into\n"
        "it. Directories and sockets are always refused.\n";
    el_cli_opts o;
    el_cli_opts_init(&o);
    const char *out = NULL;
    el_img_codec codec = EL_IMG_CODEC_SHUFFLE_LZ4;
    bool through = false;
    const char *format = NULL;
    bool codec_given = false;
    for (int i = 1; i < argc; i++) {
        if (help_or_flag(argv[i])) {
            fputs(help, stdout);
            return 0;
        }
        if (el_cli_once(argv[i])) return 1;
        if (!strcmp(argv[i], "--write-through")) {
            through = true;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            if (!v) return el_cli_usage("pack: %s needs a file", argv[i]);
            out = v;
            i++;
            continue;
        }
        if (!strcmp(argv[i], "--format")) {
            if (!v || (strcmp(v, "gguf") && strcmp(v, "elimg")))
                return el_cli_usage("pack: --format needs gguf or elimg");
            format = v;
            i++;
            continue;
        }
        if (!strcmp(argv[i], "--codec")) {
            if (!v) return el_cli_usage("pack: --codec needs none, lz4 or shuffle-lz4");
            if (el_img_codec_parse(v, &codec) != EL_OK) return el_cli_usage("pack: %s", el_last_error());
            codec_given = true;
            i++;
            continue;
        }
        int r = el_cli_parse_common(argc, argv, &i, &o);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (argv[i][0] == '-' && argv[i][1]) return el_cli_usage("pack: unknown option %s", argv[i]);
        if (o.model) return el_cli_usage("pack: one MODEL only (got %s and %s)", o.model, argv[i]);
        o.model = argv[i];
    }
    if (!o.model || !out) return el_cli_usage("pack MODEL -o OUT.elimg: missing %s", o.model ? "-o OUT" : "MODEL");
    size_t olen = strlen(out);
    if (!format) format = olen >= 5 && !strcasecmp(out + olen - 5, ".gguf") ? "gguf" : "elimg";
    if (!strcmp(format, "gguf") && (codec_given || o.plan.chunk_bytes))
        return el_cli_usage("pack: --codec and --chunk apply to images, not GGUF output");
    if (!strcmp(format, "gguf")) return pack_gguf(&o, out, through);
    el_image_pack_params p = {.dtype = o.plan.dtype, .codec = codec, .chunk_bytes = o.plan.chunk_bytes,
                              .tokenizer_path = o.tokenizer, .src_offset = o.offset,
                              .write_through = through};
    el_image_pack_stats st;
    el_status s = el_image_pack(o.model, out, &p, &st);
    if (s != EL_OK) return el_cli_fail(s);
    char a[32];
    printf("packed %s -> %s (%s, %u chunks: %u none, %u lz4, %u shuffle-lz4)\n", o.model, out,
           el_size_format(st.image_bytes, a, sizeof a), st.chunks,
           st.chunks_by_codec[EL_IMG_CODEC_NONE], st.chunks_by_codec[EL_IMG_CODEC_LZ4],
           st.chunks_by_codec[EL_IMG_CODEC_SHUFFLE_LZ4]);
    printf("compression (by the dominant dtype of each chunk):\n");
    for (int d = 0; d < EL_DT_COUNT; d++)
        if (st.raw_bytes[d]) print_ratio(el_dtype_name((el_dtype)d), st.raw_bytes[d], st.stored_bytes[d]);
    print_ratio("overall", st.raw_total, st.stored_total);
    return 0;
}

static bool g_flash_ab; /* flash --ab */

/* IMG [--offset B] or IMG TARGET [--offset B] (flash: or --ab). */
static int parse_paths(int argc, char **argv, const char *help, const char **a, const char **b,
                       uint64_t *offset) {
    *a = *b = NULL;
    *offset = 0;
    for (int i = 1; i < argc; i++) {
        if (help_or_flag(argv[i])) {
            fputs(help, stdout);
            return -1;
        }
        if (el_cli_once(argv[i])) return 1;
        if (!strcmp(argv[i], "--ab") && !strcmp(argv[0], "flash")) {
            g_flash_ab = true;
            continue;
        }
        if (!strcmp(argv[i], "--offset")) {
            if (i + 1 >= argc) return el_cli_usage("%s: --offset needs a value", argv[0]);
            if (el_cli_parse_offset(argv[++i], offset)) return 1;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1]) return el_cli_usage("%s: unknown option %s", argv[0], argv[i]);
        if (!*a) *a = argv[i];
        else if (!*b) *b = argv[i];
        else return el_cli_usage("%s: too many arguments (%s)", argv[0], argv[i]);
    }
    return 0;
}

int el_cmd_verify(int argc, char **argv) {
    const char *img, *extra;
    uint64_t offset;
    int rc = parse_paths(argc, argv,
                         "usage: edgeload verify IMG [--offset BYTES]\n"
                         "Checks every CRC32C of an image: header, manifest, chunk table, stored files, and\n"
                         "every chunk (stored bytes, then decoded). Names the first bad chunk and its tensors.\n",
                         &img, &extra, &offset);
    if (rc) return rc < 0 ? 0 : rc;
    if (!img || extra) return el_cli_usage("verify IMG: expected exactly one image");
    el_image_verify_report r;
    el_image_ab ab;
    memset(&ab, 0, sizeof ab);
    el_status s = offset ? EL_OK : el_image_ab_resolve(img, &offset, &ab);
    if (s == EL_OK && offset && ab.slot_offset[1])
        printf("%s: A/B layout, generation %llu: slot %c active (offset %llu)\n", img,
               (unsigned long long)ab.generation, ab.active ? 'B' : 'A', (unsigned long long)offset);
    if (s == EL_OK) s = el_image_verify(img, offset, &r);
    if (s != EL_OK) return el_cli_fail(s);
    char a[32], b[32];
    printf("%s: ok: %u chunks (%s stored, %s raw), %u stored files, every CRC32C matches\n", img,
           r.chunks, el_size_format(r.stored_bytes, a, sizeof a), el_size_format(r.raw_bytes, b, sizeof b),
           r.side_files);
    return 0;
}

int el_cmd_flash(int argc, char **argv) {
    const char *img, *target;
    uint64_t offset;
    int rc = parse_paths(argc, argv,
                         "usage: edgeload flash IMG TARGET [--offset BYTES | --ab]\n"
                         "Verifies every CRC of IMG, writes it to TARGET (block device, partition or existing\n"
                         "file) at --offset with aligned writes, fsyncs, then reads it back and verifies every\n"
                         "CRC. Refuses a target smaller than offset + image and a target that is (or holds) a\n"
                         "mounted filesystem. --ab: TARGET holds two slots and a header naming the good one\n"
                         "(made on first use); the image goes to the other slot and the header switches to it\n"
                         "only once it verifies (docs/FORMAT.md). Commands that read TARGET use its active slot.\n",
                         &img, &target, &offset);
    if (rc) return rc < 0 ? 0 : rc;
    if (!img || !target) return el_cli_usage("flash IMG TARGET: missing %s", img ? "TARGET" : "IMG");
    el_image_verify_report r;
    if (g_flash_ab) {
        if (offset) return el_cli_usage("flash: --ab places the image itself; drop --offset");
        el_image_ab ab;
        el_status s = el_image_flash_ab(img, target, &ab, &r);
        if (s != EL_OK) return el_cli_fail(s);
        printf("flashed %s -> %s slot %c (offset %llu), generation %llu; read back: %u chunks, every "
               "CRC32C matches; the header now names slot %c\n", img, target, ab.active ? 'B' : 'A',
               (unsigned long long)ab.slot_offset[ab.active], (unsigned long long)ab.generation,
               r.chunks, ab.active ? 'B' : 'A');
        return 0;
    }
    el_status s = el_image_flash(img, target, offset, &r);
    if (s != EL_OK) return el_cli_fail(s);
    char a[32];
    printf("flashed %s -> %s at offset %llu; read back: %u chunks (%s), every CRC32C matches\n", img,
           target, (unsigned long long)offset, r.chunks, el_size_format(r.stored_bytes, a, sizeof a));
    return 0;
}

void el_cli_inspect_image(const el_model *m, bool json) {
    const el_image *img = m->image;
    if (!img) return;
    const el_img_meta *mt = &img->meta;
    const el_img_header *h = &mt->h;
    uint64_t stored[EL_IMG_CODEC_COUNT] = {0}, raw[EL_IMG_CODEC_COUNT] = {0};
    uint32_t count[EL_IMG_CODEC_COUNT] = {0};
    for (uint32_t i = 0; i < h->chunk_count; i++) {
        const el_img_chunk *c = &mt->chunks[i];
        stored[c->codec] += c->stored_size;
        raw[c->codec] += c->raw_size;
        count[c->codec]++;
    }
    if (json) {
        printf(",\"image\":{\"version\":\"%u.%u\",\"offset\":%llu,\"image_size\":%llu,\"payload_size\":%llu,"
               "\"chunk_size\":%llu,\"chunks\":%u,\"source_format\":",
               h->version_major, h->version_minor, (unsigned long long)img->base,
               (unsigned long long)h->image_size, (unsigned long long)h->payload_size,
               (unsigned long long)h->chunk_size, h->chunk_count);
        el_cli_json_string(stdout, mt->source_format);
        printf(",\"producer\":");
        el_cli_json_string(stdout, mt->producer);
        printf(",\"codecs\":{");
        for (int c = 0; c < EL_IMG_CODEC_COUNT; c++)
            printf("%s\"%s\":{\"chunks\":%u,\"raw\":%llu,\"stored\":%llu}", c ? "," : "",
                   el_img_codec_name((el_img_codec)c), count[c], (unsigned long long)raw[c],
                   (unsigned long long)stored[c]);
        printf("},\"files\":[");
        for (uint32_t i = 0; i < mt->side_count; i++) {
            printf("%s{\"name\":", i ? "," : "");
            el_cli_json_string(stdout, mt->side[i].name);
            printf(",\"bytes\":%llu}", (unsigned long long)mt->side[i].size);
        }
        printf("]}");
        return;
    }
    char a[32], b[32], c3[32];
    printf("image    .elimg %u.%u at offset %llu, %s; producer '%s'; packed from %s\n",
           h->version_major, h->version_minor, (unsigned long long)img->base,
           el_size_format(h->image_size, a, sizeof a), mt->producer, mt->source_format);
    printf("header   manifest %llu bytes at %llu (crc 0x%08x); chunk table %u x %u bytes at %llu "
           "(crc 0x%08x); payload at %llu\n", (unsigned long long)h->manifest_size,
           (unsigned long long)h->manifest_offset, h->manifest_crc, h->chunk_count, EL_IMG_ENTRY_SIZE,
           (unsigned long long)h->table_offset, h->table_crc, (unsigned long long)h->payload_offset);
    printf("payload  %s raw in %u chunks of %s; pack: codec %s, dtype %s; plan at pack time %s\n",
           el_size_format(h->payload_size, a, sizeof a), h->chunk_count,
           el_size_format(h->chunk_size, b, sizeof b), mt->pack_codec, mt->pack_dtype,
           el_size_format(mt->plan_total, c3, sizeof c3));
    for (int c = 0; c < EL_IMG_CODEC_COUNT; c++)
        if (count[c])
            printf("codec    %-11s %6u chunks  %12s -> %12s  ratio %.3f\n", el_img_codec_name((el_img_codec)c),
                   count[c], el_size_format(raw[c], a, sizeof a), el_size_format(stored[c], b, sizeof b),
                   stored[c] ? (double)raw[c] / (double)stored[c] : 0.0);
    for (uint32_t i = 0; i < mt->side_count; i++)
        printf("stored   %s (%llu bytes, crc 0x%08x)\n", mt->side[i].name,
               (unsigned long long)mt->side[i].size, mt->side[i].crc);
    printf("\n%-6s %12s %10s %10s %-11s %4s %10s %10s\n", "chunk", "offset", "stored", "raw", "codec",
           "elem", "crc_stored", "crc_raw");
    for (uint32_t i = 0; i < h->chunk_count; i++) {
        const el_img_chunk *c = &mt->chunks[i];
        printf("%-6u %12llu %10u %10u %-11s %4u 0x%08x 0x%08x\n", i, (unsigned long long)c->offset,
               c->stored_size, c->raw_size, el_img_codec_name((el_img_codec)c->codec), c->elem_size,
               c->crc_stored, c->crc_raw);
    }
    printf("\n");
}

void el_cli_plan_side_files(const el_model *m, bool json) {
    const el_image *img = m->image;
    if (!img) return;
    const el_img_meta *mt = &img->meta;
    if (json) {
        printf(",\"side_files\":[");
        for (uint32_t i = 0; i < mt->side_count; i++) {
            printf("%s{\"name\":", i ? "," : "");
            el_cli_json_string(stdout, mt->side[i].name);
            printf(",\"bytes\":%llu,\"offset\":%llu,\"where\":\"image\"}",
                   (unsigned long long)mt->side[i].size,
                   (unsigned long long)(img->base + mt->side[i].offset));
        }
        printf("]");
        return;
    }
    char a[32];
    for (uint32_t i = 0; i < mt->side_count; i++)
        printf("  file     %12s  %s: read in place from the image (offset %llu), not copied\n",
               el_size_format(mt->side[i].size, a, sizeof a), mt->side[i].name,
               (unsigned long long)(img->base + mt->side[i].offset));
}
