//! The `#[kafka_component]` attribute of `trigger-kafka-sdk`. It generates the
//! component's bindings from the trigger's WIT (embedded here, so a component
//! needs no path into any repository) in the component's own crate, which is
//! what makes the component export exactly one world: `kafka-trigger` for a
//! record handler, `kafka-trigger-batch` for a batch handler.

use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, FnArg, ItemFn, Type};

/// The trigger's guest contract, the same file the host is built against.
const WIT: &str = include_str!("../wit/kafka-trigger.wit");

/// See `trigger_kafka_sdk::kafka_component`.
#[proc_macro_attribute]
pub fn kafka_component(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return syn::Error::new_spanned(attr, "#[kafka_component] takes no arguments: the handler's parameter (Record or Vec<Record>) decides")
            .to_compile_error()
            .into();
    }
    let func = parse_macro_input!(item as ItemFn);
    let name = &func.sig.ident;
    let batch = match handler_kind(&func) {
        Ok(batch) => batch,
        Err(e) => return e.to_compile_error().into(),
    };
    let sdk = quote!(::trigger_kafka_sdk);
    let world = if batch { "trigger-kafka:kafka/kafka-trigger-batch" } else { "trigger-kafka:kafka/kafka-trigger" };
    let single = if batch {
        // A lone record goes through the batch handler too: one code path.
        quote!(super::#name(::std::vec![#sdk::Record::from_wit_parts(__wit_parts(message))]))
    } else {
        quote!(super::#name(#sdk::Record::from_wit_parts(__wit_parts(message))))
    };
    let batch_impl = batch.then(|| {
        quote! {
            impl exports::trigger_kafka::kafka::inbound_kafka_batch::Guest for __Component {
                fn handle_messages(messages: ::std::vec::Vec<KafkaRecord>) -> ::std::result::Result<(), HandleError> {
                    let records = messages.into_iter().map(|m| #sdk::Record::from_wit_parts(__wit_parts(m))).collect();
                    __wit_result(super::#name(records))
                }
            }
        }
    });
    quote! {
        #func

        #[doc(hidden)]
        mod __trigger_kafka_component {
            #sdk::__private::wit_bindgen::generate!({
                inline: #WIT,
                // No files: without this, wit-bindgen also reads the
                // component crate's own wit/ directory, if it has one.
                path: [],
                world: #world,
                runtime_path: "::trigger_kafka_sdk::__private::wit_bindgen::rt",
            });

            use trigger_kafka::kafka::types::{HandleError, Header, KafkaRecord};

            struct __Component;

            fn __wit_parts(m: KafkaRecord) -> #sdk::__private::WitParts {
                #sdk::__private::WitParts {
                    topic: m.topic,
                    partition: m.partition,
                    offset: m.offset,
                    timestamp: m.timestamp,
                    key: m.key,
                    value: m.value,
                    headers: m.headers.into_iter().map(|Header { key, value }| (key, value)).collect(),
                }
            }

            fn __wit_result(result: ::std::result::Result<(), #sdk::Error>) -> ::std::result::Result<(), HandleError> {
                result.map_err(|e| match e {
                    #sdk::Error::Permanent(message) => HandleError::Permanent(message),
                    #sdk::Error::Retryable(message) => HandleError::Retryable(message),
                })
            }

            impl exports::trigger_kafka::kafka::inbound_kafka::Guest for __Component {
                fn handle_message(message: KafkaRecord) -> ::std::result::Result<(), HandleError> {
                    __wit_result(#single)
                }
            }

            #batch_impl

            export!(__Component);
        }
    }
    .into()
}

/// `true` for `fn(Vec<Record>)`, `false` for `fn(Record)`.
fn handler_kind(func: &ItemFn) -> syn::Result<bool> {
    let mut inputs = func.sig.inputs.iter();
    let (Some(FnArg::Typed(arg)), None) = (inputs.next(), inputs.next()) else {
        return Err(syn::Error::new_spanned(
            &func.sig,
            "a #[kafka_component] handler takes one argument: `record: Record` or `records: Vec<Record>`",
        ));
    };
    if func.sig.asyncness.is_some() {
        return Err(syn::Error::new_spanned(func.sig.asyncness, "a #[kafka_component] handler is not async"));
    }
    match &*arg.ty {
        Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Vec") => Ok(true),
        Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Record") => Ok(false),
        other => Err(syn::Error::new_spanned(other, "expected `Record` or `Vec<Record>`")),
    }
}
