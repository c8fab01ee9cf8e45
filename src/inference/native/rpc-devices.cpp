// rbee's addition to node-llama-cpp's addon: a model's layers on other machines' devices, through llama.cpp's RPC
// backend (ggml-rpc: an rpc-server on each machine lends its devices). AddonModel's constructor (edited by
// scripts/build-addon.ts) hands its options here: `rpcServers` (HOST:PORT each) become those servers' devices, ahead of
// this machine's GPUs in llama_model_params.devices (as llama.cpp orders them: the first layers remote, the last and the
// output here), with every layer offloaded. The RPC backend is loaded from rpc/ beside the addon only then, and its
// devices are never registered with ggml: node-llama-cpp would count them as this machine's VRAM.
#include <dlfcn.h>
#include <string>
#include <vector>
#include "ggml-backend.h"
#include "llama.h"
#include "napi.h"

namespace {
typedef ggml_backend_reg_t (*RpcAddServer)(const char* endpoint);

/** The folder this addon was loaded from (where node-llama-cpp's prebuilt keeps its libraries). */
std::string addonFolder() {
    Dl_info info;
    if (dladdr(reinterpret_cast<void*>(&addonFolder), &info) == 0 || info.dli_fname == nullptr) return ".";
    std::string path = info.dli_fname;
    size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? "." : path.substr(0, slash);
}

ggml_backend_reg_t rpcBackend() {
    ggml_backend_reg_t reg = ggml_backend_reg_by_name("RPC");
    if (reg == nullptr) reg = ggml_backend_load((addonFolder() + "/rpc/libggml-rpc.so").c_str());
    return reg;
}

Napi::Value RpcFolder(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), addonFolder() + "/rpc");
}
}  // namespace

/**
 * Puts the RPC servers' devices into `params` (kept in `storage`: llama_model_params only borrows the list); false, with
 * the reason in `error`, where the backend cannot be loaded or a server lends no device.
 */
bool rbeeApplyRpcServers(llama_model_params& params, const Napi::Object& options, std::vector<ggml_backend_dev_t>& storage, std::string& error) {
    if (!options.Has("rpcServers")) return true;
    Napi::Array servers = options.Get("rpcServers").As<Napi::Array>();
    if (servers.Length() == 0) return true;
    ggml_backend_reg_t rpc = rpcBackend();
    if (rpc == nullptr) {
        error = "llama.cpp's RPC backend (rpc/libggml-rpc.so beside the addon) cannot be loaded: run bun scripts/build-addon.ts";
        return false;
    }
    auto addServer = reinterpret_cast<RpcAddServer>(ggml_backend_reg_get_proc_address(rpc, "ggml_backend_rpc_add_server"));
    storage.clear();
    for (uint32_t i = 0; i < servers.Length(); i++) {
        std::string endpoint = servers.Get(i).As<Napi::String>().Utf8Value();
        ggml_backend_reg_t server = addServer(endpoint.c_str());
        if (server == nullptr || ggml_backend_reg_dev_count(server) == 0) {
            error = "the RPC server at " + endpoint + " lends no device";
            return false;
        }
        for (size_t d = 0; d < ggml_backend_reg_dev_count(server); d++) storage.push_back(ggml_backend_reg_dev_get(server, d));
    }
    std::vector<ggml_backend_dev_t> igpus;
    size_t gpus = 0;
    for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        if (ggml_backend_dev_backend_reg(dev) == rpc) continue;
        if (ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_GPU) {
            storage.push_back(dev);
            gpus++;
        } else if (ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_IGPU) {
            igpus.push_back(dev);
        }
    }
    if (gpus == 0) storage.insert(storage.end(), igpus.begin(), igpus.end());
    storage.push_back(nullptr);
    params.devices = storage.data();
    params.n_gpu_layers = -1;
    return true;
}

/** rbeeRpcFolder(): where rpc-server and libggml-rpc.so lie beside this addon (scripts/build-addon.ts puts them there). */
void rbeeRegisterRpc(Napi::Object exports) {
    exports.Set("rbeeRpcFolder", Napi::Function::New(exports.Env(), RpcFolder, "rbeeRpcFolder"));
}
