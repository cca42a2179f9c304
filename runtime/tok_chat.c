/*
 * tok_chat.c - one chat turn in the model's template, recognised by content.
 *
 * tokenizer.chat_template is Jinja; like llama.cpp (src/llama-chat.cpp,
 * llm_chat_detect_template) we do not run it but recognise the common templates by
 * marker strings, in llama.cpp's order, or by name when the key holds a template name
 * ("chatml", "llama3", ...).  The text built is llama.cpp's for the same messages
 * (system, user, then the assistant's opening).  BOS is not part of it: encode the
 * result with TOK_ADD_SPECIAL | TOK_PARSE_SPECIAL.
 */
#include "tok_impl.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "../common/sbuf.h"
#include "../common/banned.h"

enum tmpl {
    T_UNKNOWN, T_CHATML, T_PHI4, T_MISTRAL_V7, T_MISTRAL_V1, T_MISTRAL_V3, T_MISTRAL_V3_TEKKEN,
    T_LLAMA2, T_LLAMA2_SYS, T_LLAMA2_SYS_BOS, T_LLAMA2_SYS_STRIP, T_PHI3, T_FALCON3,
    T_GLMEDGE, T_ZEPHYR, T_MONARCH, T_GEMMA, T_ORION, T_OPENCHAT, T_VICUNA, T_VICUNA_ORCA,
    T_DEEPSEEK, T_COMMAND_R, T_LLAMA3, T_CHATGLM3, T_CHATGLM4, T_MINICPM, T_DEEPSEEK2,
    T_DEEPSEEK3, T_EXAONE3, T_RWKV, T_GRANITE, T_GIGACHAT, T_MEGREZ,
};

static const struct { const char *name; enum tmpl t; } names[] = {
    { "chatml", T_CHATML }, { "llama2", T_LLAMA2 }, { "llama2-sys", T_LLAMA2_SYS },
    { "llama2-sys-bos", T_LLAMA2_SYS_BOS }, { "llama2-sys-strip", T_LLAMA2_SYS_STRIP },
    { "mistral-v1", T_MISTRAL_V1 }, { "mistral-v3", T_MISTRAL_V3 },
    { "mistral-v3-tekken", T_MISTRAL_V3_TEKKEN }, { "mistral-v7", T_MISTRAL_V7 },
    { "phi3", T_PHI3 }, { "phi4", T_PHI4 }, { "falcon3", T_FALCON3 }, { "zephyr", T_ZEPHYR },
    { "monarch", T_MONARCH }, { "gemma", T_GEMMA }, { "orion", T_ORION },
    { "openchat", T_OPENCHAT }, { "vicuna", T_VICUNA }, { "vicuna-orca", T_VICUNA_ORCA },
    { "deepseek", T_DEEPSEEK }, { "deepseek2", T_DEEPSEEK2 }, { "deepseek3", T_DEEPSEEK3 },
    { "command-r", T_COMMAND_R }, { "llama3", T_LLAMA3 }, { "chatglm3", T_CHATGLM3 },
    { "chatglm4", T_CHATGLM4 }, { "glmedge", T_GLMEDGE }, { "minicpm", T_MINICPM },
    { "exaone3", T_EXAONE3 }, { "rwkv-world", T_RWKV }, { "granite", T_GRANITE },
    { "gigachat", T_GIGACHAT }, { "megrez", T_MEGREZ },
};

static const char *tmpl_name(enum tmpl t)
{
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (names[i].t == t)
            return names[i].name;
    return "unknown";
}

static enum tmpl detect(const char *s)
{
#define HAS(x) (strstr(s, (x)) != NULL)
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(s, names[i].name) == 0)
            return names[i].t;
    if (HAS("<|im_start|>"))
        return HAS("<|im_sep|>") ? T_PHI4 : T_CHATML;
    if (strncmp(s, "mistral", 7) == 0 || HAS("[INST]")) {
        if (HAS("[SYSTEM_PROMPT]"))
            return T_MISTRAL_V7;
        if (HAS("' [INST] ' + system_message") || HAS("[AVAILABLE_TOOLS]")) {
            if (HAS(" [INST]"))
                return T_MISTRAL_V1;
            if (HAS("\"[INST]\""))
                return T_MISTRAL_V3_TEKKEN;
            return T_MISTRAL_V3;
        }
        if (HAS("content.strip()"))
            return T_LLAMA2_SYS_STRIP;
        if (HAS("bos_token + '[INST]"))
            return T_LLAMA2_SYS_BOS;
        if (HAS("<<SYS>>"))
            return T_LLAMA2_SYS;
        return T_LLAMA2;
    }
    if (HAS("<|assistant|>") && HAS("<|end|>"))
        return T_PHI3;
    if (HAS("<|assistant|>") && HAS("<|user|>"))
        return HAS("</s>") ? T_FALCON3 : T_GLMEDGE;
    if (HAS("<|user|>") && HAS("<|endoftext|>"))
        return T_ZEPHYR;
    if (HAS("bos_token + message['role']"))
        return T_MONARCH;
    if (HAS("<start_of_turn>"))
        return T_GEMMA;
    if (HAS("'\\n\\nAssistant: ' + eos_token"))
        return T_ORION;
    if (HAS("GPT4 Correct "))
        return T_OPENCHAT;
    if (HAS("USER: ") && HAS("ASSISTANT: "))
        return HAS("SYSTEM: ") ? T_VICUNA_ORCA : T_VICUNA;
    if (HAS("### Instruction:") && HAS("<|EOT|>"))
        return T_DEEPSEEK;
    if (HAS("<|START_OF_TURN_TOKEN|>") && HAS("<|USER_TOKEN|>"))
        return T_COMMAND_R;
    if (HAS("<|start_header_id|>") && HAS("<|end_header_id|>"))
        return T_LLAMA3;
    if (HAS("[gMASK]sop"))
        return T_CHATGLM3;
    if (HAS("[gMASK]<sop>"))
        return T_CHATGLM4;
    if (HAS("<\xe7\x94\xa8\xe6\x88\xb7>"))   /* <用户> */
        return T_MINICPM;
    if (HAS("'Assistant: ' + message['content'] + eos_token"))
        return T_DEEPSEEK2;
    if (HAS("<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>") && HAS("<\xef\xbd\x9c" "User\xef\xbd\x9c>") &&
        HAS("<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"))
        return T_DEEPSEEK3;
    if (HAS("[|system|]") && HAS("[|assistant|]") && HAS("[|endofturn|]"))
        return T_EXAONE3;
    if (HAS("rwkv-world"))
        return T_RWKV;
    if (HAS("<|start_of_role|>"))
        return T_GRANITE;
    if (HAS("message['role'] + additional_special_tokens[0] + message['content'] + "
            "additional_special_tokens[1]"))
        return T_GIGACHAT;
    if (HAS("<|role_start|>"))
        return T_MEGREZ;
    return T_UNKNOWN;
#undef HAS
}

static enum tmpl find_tmpl(const struct tokenizer *t, struct err *e)
{
    enum tmpl k;

    if (!t->chat_template) {
        ERR(e, ERR_FORMAT, "the model has no chat template (tokenizer.chat_template)");
        return T_UNKNOWN;
    }
    k = detect(t->chat_template);
    if (k == T_UNKNOWN)
        ERR(e, ERR_UNSUPPORTED, "chat template not recognised (tokenizer.chat_template, "
            "%zu bytes): it matches none of the built-in templates and no Jinja engine runs it",
            strlen(t->chat_template));
    return k;
}

const char *tok_chat_template_name(const struct tokenizer *t, struct err *e)
{
    enum tmpl k = find_tmpl(t, e);
    return k == T_UNKNOWN ? NULL : tmpl_name(k);
}

/* llama.cpp's trim: ASCII white space at both ends */
static void add_trim(struct sbuf *b, const char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    sbuf_add(b, s, n);
}

/* Templates marking turns with tags or words: ChatML and its kin, Phi, Falcon 3, Zephyr,
 * Gemma, Orion, OpenChat, Vicuna, DeepSeek.  0: formatted into b; 1: not one of these. */
static int fmt_tagged(struct sbuf *b, enum tmpl k, const char *sys, const char *user)
{
    const int has_sys = sys != NULL;

    switch (k) {
    case T_CHATML:
        if (has_sys)
            sbuf_addf(b, "<|im_start|>system\n%s<|im_end|>\n", sys);
        sbuf_addf(b, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", user);
        break;
    case T_PHI4:
        if (has_sys)
            sbuf_addf(b, "<|im_start|>system<|im_sep|>%s<|im_end|>", sys);
        sbuf_addf(b, "<|im_start|>user<|im_sep|>%s<|im_end|><|im_start|>assistant<|im_sep|>", user);
        break;
    case T_PHI3:
        if (has_sys)
            sbuf_addf(b, "<|system|>\n%s<|end|>\n", sys);
        sbuf_addf(b, "<|user|>\n%s<|end|>\n<|assistant|>\n", user);
        break;
    case T_FALCON3:
        if (has_sys)
            sbuf_addf(b, "<|system|>\n%s\n", sys);
        sbuf_addf(b, "<|user|>\n%s\n<|assistant|>\n", user);
        break;
    case T_ZEPHYR:
        if (has_sys)
            sbuf_addf(b, "<|system|>\n%s<|endoftext|>\n", sys);
        sbuf_addf(b, "<|user|>\n%s<|endoftext|>\n<|assistant|>\n", user);
        break;
    case T_GEMMA: {
        sbuf_adds(b, "<start_of_turn>user\n");
        if (has_sys) {
            struct sbuf s2 = SBUF_INIT((size_t)1 << 30);
            add_trim(&s2, sys);
            if (s2.len) {
                sbuf_add(b, s2.p, s2.len);
                sbuf_adds(b, "\n\n");
            }
            sbuf_release(&s2);
        }
        add_trim(b, user);
        sbuf_adds(b, "<end_of_turn>\n<start_of_turn>model\n");
        break;
    }
    case T_ORION:
        sbuf_adds(b, "Human: ");
        if (has_sys)
            sbuf_addf(b, "%s\n\n", sys);
        sbuf_addf(b, "%s\n\nAssistant: </s>", user);
        break;
    case T_OPENCHAT:
        if (has_sys)
            sbuf_addf(b, "%s<|end_of_turn|>", sys);
        sbuf_addf(b, "GPT4 Correct User: %s<|end_of_turn|>GPT4 Correct Assistant:", user);
        break;
    case T_VICUNA:
    case T_VICUNA_ORCA:
        if (has_sys)
            sbuf_addf(b, k == T_VICUNA_ORCA ? "SYSTEM: %s\n" : "%s\n\n", sys);
        sbuf_addf(b, "USER: %s\nASSISTANT:", user);
        break;
    case T_DEEPSEEK:
        if (has_sys)
            sbuf_adds(b, sys);
        sbuf_addf(b, "### Instruction:\n%s\n### Response:\n", user);
        break;
    case T_DEEPSEEK3:
        if (has_sys)
            sbuf_addf(b, "%s\n\n", sys);
        sbuf_addf(b, "<\xef\xbd\x9c" "User\xef\xbd\x9c>%s<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>",
                  user);
        break;
    default:
        return 1;
    }
    return 0;
}

/* The [INST] families (Mistral, Llama 2) and the header-token templates that trim the
 * messages (Command-R, Llama 3).  0: formatted into b; 1: not one of these. */
static int fmt_inst(struct sbuf *b, enum tmpl k, const char *sys, const char *user)
{
    const int has_sys = sys != NULL;

    switch (k) {
    case T_MISTRAL_V7:
        if (has_sys)
            sbuf_addf(b, "[SYSTEM_PROMPT] %s[/SYSTEM_PROMPT]", sys);
        sbuf_addf(b, "[INST] %s[/INST]", user);
        break;
    case T_MISTRAL_V1:
    case T_MISTRAL_V3:
    case T_MISTRAL_V3_TEKKEN: {
        const char *lead = k == T_MISTRAL_V1 ? " " : "", *trail = k == T_MISTRAL_V3_TEKKEN ? "" : " ";
        sbuf_addf(b, "%s[INST]%s", lead, trail);
        if (has_sys)
            sbuf_addf(b, "%s\n\n", sys);
        sbuf_addf(b, "%s%s[/INST]", user, lead);
        break;
    }
    case T_LLAMA2:
    case T_LLAMA2_SYS:
    case T_LLAMA2_SYS_BOS:
    case T_LLAMA2_SYS_STRIP:
        sbuf_adds(b, "[INST] ");
        if (has_sys) {
            if (k != T_LLAMA2)
                sbuf_adds(b, "<<SYS>>\n");
            if (k == T_LLAMA2_SYS_STRIP)
                add_trim(b, sys);
            else
                sbuf_adds(b, sys);
            sbuf_adds(b, k != T_LLAMA2 ? "\n<</SYS>>\n\n" : "\n");
        }
        if (k == T_LLAMA2_SYS_STRIP)
            add_trim(b, user);
        else
            sbuf_adds(b, user);
        sbuf_adds(b, " [/INST]");
        break;
    case T_COMMAND_R:
        if (has_sys) {
            sbuf_adds(b, "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>");
            add_trim(b, sys);
            sbuf_adds(b, "<|END_OF_TURN_TOKEN|>");
        }
        sbuf_adds(b, "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>");
        add_trim(b, user);
        sbuf_adds(b, "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>");
        break;
    case T_LLAMA3:
        if (has_sys) {
            sbuf_adds(b, "<|start_header_id|>system<|end_header_id|>\n\n");
            add_trim(b, sys);
            sbuf_adds(b, "<|eot_id|>");
        }
        sbuf_adds(b, "<|start_header_id|>user<|end_header_id|>\n\n");
        add_trim(b, user);
        sbuf_adds(b, "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    default:
        return 1;
    }
    return 0;
}

/* The rest of llama.cpp's built-in templates: the GLM family, MiniCPM, Monarch,
 * DeepSeek-V2, EXAONE 3, RWKV World, Granite, GigaChat, Megrez (llm_chat_apply_template's
 * text for an optional system message, one user message and, where llama.cpp adds it,
 * the assistant's opening).  0: formatted into b; 1: not one of these. */
static int fmt_more(struct sbuf *b, enum tmpl k, const char *sys, const char *user)
{
    const int has_sys = sys != NULL;

    switch (k) {
    case T_MONARCH:   /* BOS as text before every turn but the first */
        if (has_sys)
            sbuf_addf(b, "system\n%s</s>\n<s>", sys);
        sbuf_addf(b, "user\n%s</s>\n<s>assistant\n", user);
        break;
    case T_CHATGLM3:   /* a space after each role's newline */
        sbuf_adds(b, "[gMASK]sop");
        if (has_sys)
            sbuf_addf(b, "<|system|>\n %s", sys);
        sbuf_addf(b, "<|user|>\n %s<|assistant|>", user);
        break;
    case T_CHATGLM4:
    case T_GLMEDGE:
        if (k == T_CHATGLM4)
            sbuf_adds(b, "[gMASK]<sop>");
        if (has_sys)
            sbuf_addf(b, "<|system|>\n%s", sys);
        sbuf_addf(b, "<|user|>\n%s<|assistant|>", user);
        break;
    case T_MINICPM:   /* no assistant opening: "<AI>" ends the user's turn */
        if (has_sys)
            add_trim(b, sys);
        sbuf_adds(b, "<\xe7\x94\xa8\xe6\x88\xb7>");   /* <用户> */
        add_trim(b, user);
        sbuf_adds(b, "<AI>");
        break;
    case T_DEEPSEEK2:
    case T_RWKV:   /* RWKV has no assistant opening: "Assistant:" ends the user's turn */
        if (has_sys)
            sbuf_addf(b, "%s\n\n", sys);
        sbuf_addf(b, "User: %s\n\nAssistant:", user);
        break;
    case T_EXAONE3:
        if (has_sys) {
            sbuf_adds(b, "[|system|]");
            add_trim(b, sys);
            sbuf_adds(b, "[|endofturn|]\n");
        }
        sbuf_adds(b, "[|user|]");
        add_trim(b, user);
        sbuf_adds(b, "\n[|assistant|]");
        break;
    case T_GRANITE:
        if (has_sys)
            sbuf_addf(b, "<|start_of_role|>system<|end_of_role|>%s<|end_of_text|>\n", sys);
        sbuf_addf(b, "<|start_of_role|>user<|end_of_role|>%s<|end_of_text|>\n"
                  "<|start_of_role|>assistant<|end_of_role|>\n", user);
        break;
    case T_GIGACHAT:   /* "<s>" as text, the system message right after it */
        sbuf_adds(b, "<s>");
        if (has_sys)
            sbuf_addf(b, "%s<|message_sep|>", sys);
        sbuf_addf(b, "user<|role_sep|>%s<|message_sep|>available functions<|role_sep|>[]"
                  "<|message_sep|>assistant<|role_sep|>", user);
        break;
    case T_MEGREZ:
        if (has_sys)
            sbuf_addf(b, "<|role_start|>system<|role_end|>%s<|turn_end|>", sys);
        sbuf_addf(b, "<|role_start|>user<|role_end|>%s<|turn_end|>"
                  "<|role_start|>assistant<|role_end|>", user);
        break;
    default:
        return 1;
    }
    return 0;
}

int tok_chat_format(const struct tokenizer *t, const char *sys, const char *user, char **out,
                    struct err *e)
{
    struct sbuf b = SBUF_INIT((size_t)1 << 30);
    enum tmpl k = find_tmpl(t, e);

    *out = NULL;
    if (k == T_UNKNOWN)
        return -1;
    if (!user)
        user = "";
    if (sys && !*sys)
        sys = NULL;   /* an empty system turn is no system turn */
    if (fmt_tagged(&b, k, sys, user) && fmt_inst(&b, k, sys, user) &&
        fmt_more(&b, k, sys, user)) {
        sbuf_release(&b);
        return ERR(e, ERR_UNSUPPORTED, "chat template recognised as '%s', which apr-run does not "
                   "format", tmpl_name(k));
    }
    sbuf_addc(&b, 0);
    if (sbuf_check(&b, "chat prompt", e)) {
        sbuf_release(&b);
        return -1;
    }
    *out = b.p;
    return 0;
}
